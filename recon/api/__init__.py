"""The HTTP app: FastAPI factory, routes, dependencies, uploads, validation; never torch."""
