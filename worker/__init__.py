"""Worker side: the Celery app and task (`worker.celery_app`, `worker.tasks`) and the engine.

Importing this package must stay cheap and framework-free: `worker.engine` is used without Celery.
"""
