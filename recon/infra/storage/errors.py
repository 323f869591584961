"""Typed storage errors: callers catch `StorageError` broadly or one case narrowly."""


class StorageError(Exception):
    """Base of every error a storage backend raises on purpose."""


class InvalidObjectKey(StorageError, ValueError):
    """A key or key part is not safe to use (empty, slash, '..', odd characters)."""


class ObjectNotFound(StorageError, KeyError):
    """No object is stored under the key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "object not found"


class StorageUnavailable(StorageError):
    """The backend cannot be reached or refused the credentials (a retriable condition)."""


class StorageFull(StorageUnavailable):
    """The backend has no space left (a full disk or quota): retrying soon will not help."""
