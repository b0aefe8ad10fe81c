"""The web console: pages served by `medscrm serve` at `/`."""
