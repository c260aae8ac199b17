"""``m365perf sandbox``: run the local Microsoft 365 emulator in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from m365perf.sandbox.config import Faults, SandboxConfig
from m365perf.sandbox.renderer import find_renderer


def _faults(ctx: click.Context, param: click.Parameter, value: str) -> Faults:
    try:
        return Faults.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("sandbox")
@click.option("--seed", is_flag=True, help="Load the demo council (Coventry's indicators).")
@click.option("--reset", is_flag=True, help="Forget all state in the data dir first.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--tls-port",
    type=click.IntRange(0, 65535),
    help="HTTPS listener for MSAL (default: --port + 1).",
)
@click.option("--no-tls", is_flag=True, help="No HTTPS listener (MSAL will not work).")
@click.option(
    "--data-dir",
    default=Path("sandbox-data"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--throttle/--no-throttle",
    default=True,
    show_default=True,
    help="Answer 429 when a documented budget is exceeded.",
)
@click.option(
    "--faults",
    default="",
    callback=_faults,
    help="Shares of requests to break, e.g. 503=0.1,429=0.05,slow=0.05,drop=0.02, or one "
    "rate (0.2: 30% of it each 429, 503 and dropped after the write, 10% slow).",
)
@click.option("--fault-seed", type=int, help="Seed for the fault dice (replays a run).")
@click.option("--bot-endpoint", help="Where card clicks are posted (the service's bot endpoint).")
@click.option("--page-size", type=click.IntRange(1), help="Items per Graph page (default 5).")
@click.option(
    "--renderer-dir",
    envvar="M365PERF_SANDBOX_RENDERER_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Microsoft's Adaptive Cards renderer for the inbox pages, node_modules/adaptivecards/"
    "dist (default: the repository's or the working directory's node_modules).",
)
def sandbox(
    seed: bool,
    reset: bool,
    host: str,
    port: int,
    tls_port: int | None,
    no_tls: bool,
    data_dir: Path,
    throttle: bool,
    faults: Faults,
    fault_seed: int | None,
    bot_endpoint: str | None,
    page_size: int | None,
    renderer_dir: Path | None,
) -> None:
    """Run the local Microsoft 365 emulator on HOST:PORT until interrupted."""
    from m365perf.sandbox.server import serve

    options: dict[str, object] = {
        "host": host,
        "port": port,
        "tls": not no_tls,
        "tls_port": tls_port if tls_port is not None else (port + 1 if port else 0),
        "data_dir": data_dir,
        "throttle": throttle,
        "faults": faults,
    }
    if fault_seed is not None:
        options["rng_seed"] = fault_seed
    if bot_endpoint:
        options["bot_endpoint"] = bot_endpoint
    if page_size:
        options["page_size"] = page_size
    if renderer_dir is not None:
        options["renderer_dir"] = renderer_dir
    config = SandboxConfig.model_validate(options)
    if reset:
        for name in ("sandbox.sqlite3", "sandbox.sqlite3-wal", "sandbox.sqlite3-shm"):
            (data_dir / name).unlink(missing_ok=True)
    click.echo(f"m365perf sandbox on {config.http_base_url}", err=True)
    if config.tls:
        click.echo(
            f"  https (for MSAL): {config.https_base_url}, CA file {config.ca_file}", err=True
        )
    click.echo(f"  inbox pages: {config.http_base_url}/_sandbox/", err=True)
    renderer = find_renderer(config.renderer_dir)
    if renderer.problem:
        click.echo(f"  warning: {renderer.problem}", err=True)
    click.echo("  settings to point the service here:", err=True)
    for key, value in config.settings_overrides().items():
        click.echo(f"    M365PERF_{key.upper()}={value}", err=True)
    try:
        serve(config, seed=seed)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
