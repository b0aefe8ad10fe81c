"""HCP360 behaviour model: behavioural tags, potential tier, AIPL and lifecycle stages, lead and
engagement scores (time-decayed), micro-segments. Rules and weights are data (``rules.yaml``).

Batch: :func:`medscrm.scores.service.refresh_all`; real time: :func:`medscrm.scores.realtime.refresh_persons`.
"""
