"""HCP360 profiles: the golden record, identities, lineage, timeline — read with role-aware masking."""
