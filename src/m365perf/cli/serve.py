"""``m365perf serve``: the bot endpoint, the scheduler and the dispatcher in one process."""

from __future__ import annotations

from pathlib import Path

import click

from m365perf.cli._common import load_flows_or_exit


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--flows",
    "flows_dir",
    default=Path("flows"),
    show_default=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--tick",
    "tick_s",
    default=5.0,
    show_default=True,
    type=float,
    help="Seconds between picking up due timers (the outbox is drained continuously).",
)
@click.option(
    "--migrate/--no-migrate",
    default=None,
    help="Upgrade the database schema before starting (default: M365PERF_MIGRATE_ON_START, "
    "true). With --no-migrate a database behind this version is refused: run "
    "`m365perf db upgrade`.",
)
def serve(host: str, port: int, flows_dir: Path, tick_s: float, migrate: bool | None) -> None:
    """Run the web endpoints, the scheduler and the dispatcher until stopped.

    Several instances may share one PostgreSQL database: each sends what it claims, and
    only the holder of the advisory lock opens cycles.
    """
    from m365perf.logs import configure_logging
    from m365perf.service import Service
    from m365perf.settings import load_settings
    from m365perf.store import SchemaOutOfDate, create_store

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    if not settings.has_tenant:
        raise click.UsageError(
            "no tenant is configured (M365PERF_TENANT_ID, M365PERF_CLIENT_ID...): see "
            "config/.env.example, or run `m365perf demo --auto` to rehearse with the sandbox"
        )
    flows = load_flows_or_exit(flows_dir)
    migrate = settings.migrate_on_start if migrate is None else migrate
    try:
        store = create_store(settings.database_url, migrate=migrate)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    Service(settings, flows, store=store).run(host, port, tick_s=tick_s)
