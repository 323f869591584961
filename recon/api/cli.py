"""`recon api [--host 127.0.0.1] [--port 8000]`: the HTTP API alone, for production.

Settings come from the environment (`RECON_*`); the API refuses to start without API keys.
"""

import argparse
import sys

from pydantic import ValidationError

from recon.api.auth import InvalidApiKeys, MissingApiKeys
from recon.infra.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    """The `recon api` argument parser (defaults come from the settings)."""
    parser = argparse.ArgumentParser(prog="recon api", description="Run the HTTP API.")
    parser.add_argument("--host", default=None, help="bind address (default RECON_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default RECON_PORT, 8000)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run uvicorn on `create_app(Settings())`; returns a process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["api"]:
        args = args[1:]
    options = build_parser().parse_args(args)
    try:
        overrides = {k: v for k, v in (("host", options.host), ("port", options.port)) if v}
        settings = Settings(**overrides)
        import uvicorn

        from recon.api.app import create_app

        app = create_app(settings)
    except (ValidationError, MissingApiKeys, InvalidApiKeys) as exc:
        sys.stderr.write(f"recon api: {exc}\n")
        return 2
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
