"""HTTP layer: thin FastAPI routers over the domain services."""
