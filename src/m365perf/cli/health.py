"""``m365perf health``: ask a running service whether it is healthy (a container HEALTHCHECK).

The image has no curl; this uses only the standard library, so it starts fast and needs
nothing beyond the package.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import click

EXIT_UNHEALTHY = 1


@click.command()
@click.option(
    "--url",
    default="http://127.0.0.1:8080/health",
    show_default=True,
    help="The service's /health endpoint.",
)
@click.option("--timeout", "timeout_s", default=5.0, show_default=True, type=float)
@click.option(
    "--max-parked",
    type=click.IntRange(min=0),
    help="Also unhealthy when more outbox messages than this are parked.",
)
def health(url: str, timeout_s: float, max_parked: int | None) -> None:
    """Exit 0 when the service answers healthy; otherwise print why and exit 1."""
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--url")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            body = json.loads(answer.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        click.echo(f"unhealthy: {url} answered {exc.code}", err=True)
        raise click.exceptions.Exit(EXIT_UNHEALTHY) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        click.echo(f"unhealthy: no answer from {url}: {reason}", err=True)
        raise click.exceptions.Exit(EXIT_UNHEALTHY) from None
    if not isinstance(body, dict) or body.get("status") not in ("ok", "degraded"):
        click.echo(f"unhealthy: {url} says {body!r}", err=True)
        raise click.exceptions.Exit(EXIT_UNHEALTHY)
    outbox = body.get("outbox") or {}
    parked = int(outbox.get("parked", 0))
    if max_parked is not None and parked > max_parked:
        click.echo(f"unhealthy: {parked} outbox messages parked (more than {max_parked})", err=True)
        raise click.exceptions.Exit(EXIT_UNHEALTHY)
    outage = body.get("outage")
    if isinstance(outage, dict):
        # Still healthy: restarting would not bring Microsoft 365 back, and clicks are kept.
        click.echo(
            f"degraded: {outage.get('service')} unreachable since {outage.get('since')}; "
            "messages wait and are sent when it returns",
            err=True,
        )
    click.echo(f"ok: {', '.join(f'{k} {v}' for k, v in outbox.items()) or 'outbox empty'}")
