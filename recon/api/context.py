"""`ServiceContext`: the clients one API process builds from its settings, shared by handlers."""

from dataclasses import dataclass

from recon.api.auth import ApiKeyRing, MissingApiKeys
from recon.api.metrics import ServiceMetrics
from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import ObjectStorage, build_storage
from recon.infra.task_queue import JobQueue


@dataclass(frozen=True)
class ServiceContext:
    """Everything a request handler needs besides the request itself."""

    settings: Settings
    job_store: JobStore
    storage: ObjectStorage
    queue: JobQueue
    api_keys: ApiKeyRing
    metrics: ServiceMetrics

    @classmethod
    def from_settings(cls, settings: Settings) -> "ServiceContext":
        """Build the clients; raises `MissingApiKeys` when no API key is configured."""
        api_keys = ApiKeyRing.from_spec(settings.api_keys.get_secret_value())
        if not api_keys:
            raise MissingApiKeys(
                "no API keys configured: set RECON_API_KEYS=tenant:key[,tenant2:key2] "
                "(`recon serve` generates one for local use)"
            )
        return cls(
            settings=settings,
            job_store=JobStore.from_settings(settings),
            storage=build_storage(settings),
            queue=JobQueue.from_settings(settings),
            api_keys=api_keys,
            metrics=ServiceMetrics(),
        )
