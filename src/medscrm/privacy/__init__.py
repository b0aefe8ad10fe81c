"""Data-subject requests under PIPL Arts. 44–47: export, correct, erase, restrict, legal hold
(:mod:`medscrm.privacy.service`); where a person's data lives (:mod:`medscrm.privacy.tables`)."""
