"""Routers, one module per resource: reconstructions and health/metrics."""
