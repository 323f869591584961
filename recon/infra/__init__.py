"""Infrastructure the API and the worker share: settings, job store, object storage, task queue.

Imports neither FastAPI, torch nor the worker, so both sides (and the API image without torch)
can use it; tests/test_architecture.py enforces it.
"""
