"""The HTTP layer: typed dependencies (`deps`), job views and one router module per resource."""
