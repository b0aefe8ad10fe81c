"""medscrm: SCRM + HCP360 for pharma and medtech in China."""

__version__ = "0.1.0"
