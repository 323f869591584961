"""The HTTP side of the reconstruction service and the infrastructure it shares with the worker.

`service.settings`, `service.storage` and `service.job_store` are framework-free (no FastAPI) so the
Celery worker can import them; `service.app.create_app(settings)` builds the FastAPI application.
This package never imports torch.
"""
