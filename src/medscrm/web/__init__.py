"""The web console (issue 7): pages served by `medscrm serve` at `/`."""
