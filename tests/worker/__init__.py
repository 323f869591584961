"""Tests of the worker: the Celery app, the task and its helpers, the reaper."""
