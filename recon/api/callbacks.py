"""Checking a submission's `callback_url` before the job is accepted.

The same URL rule the worker applies at every send (`recon.infra.webhooks.url_policy`), DNS
included, so a client learns at once (422) that its webhook could never be delivered, rather
than from a `failed` callback after the job ran. Blocking: call it from a worker thread.
"""

from recon.api.errors import Unprocessable
from recon.infra.settings import Settings
from recon.infra.webhooks import (
    CallbackHostUnresolved,
    CallbackUrlRefused,
    check_callback_url,
    parse_allowed_hosts,
)
from recon.schemas import ReconstructionParams


def check_callback(params: ReconstructionParams, settings: Settings) -> None:
    """Refuse (422) a callback the service could not sign or may not call.

    Codes: ``webhooks_not_configured`` (no `RECON_WEBHOOK_SECRET`), ``invalid_callback_url``
    (the URL rule, with the reason and how to fix it).
    """
    url = params.callback_url
    if url is None:
        return
    if settings.webhook_secret is None:
        raise Unprocessable(
            "this server does not send webhooks: the operator must set RECON_WEBHOOK_SECRET "
            "(the key webhooks are signed with); submit without callback_url meanwhile",
            code="webhooks_not_configured",
        )
    allowed = parse_allowed_hosts(settings.callback_allowed_host_list)
    try:
        check_callback_url(url, allowed)
    except (CallbackUrlRefused, CallbackHostUnresolved) as exc:
        raise Unprocessable(
            str(exc), code="invalid_callback_url", detail={"callback_url": url}
        ) from exc
