"""The worker: the Celery app, a thin task around `job_run`, the job monitor and the reaper.

Importing this package must stay cheap: the worker's main process never imports torch (CUDA must
not be initialised before the pool forks); each pool process loads `recon.engine` at start.
"""
