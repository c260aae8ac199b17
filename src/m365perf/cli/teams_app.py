"""``m365perf teams-app``: write the Teams app package (manifest and icons) for this bot."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("teams-app")
@click.option(
    "--out",
    "out",
    default=Path("m365perf-teams-app.zip"),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the zip.",
)
@click.option("--name", "short_name", default="Performance returns", show_default=True)
@click.option("--developer", "developer_name", default="m365perf", show_default=True)
def teams_app(out: Path, short_name: str, developer_name: str) -> None:
    """Write the Teams app zip for the configured bot (M365PERF_BOT_APP_ID) and address
    (M365PERF_PUBLIC_BASE_URL), to upload in the Teams admin centre."""
    from m365perf.settings import load_settings
    from m365perf.teams_app import TeamsApp

    settings = load_settings()
    app = TeamsApp(
        bot_app_id=settings.bot_app_id,
        public_base_url=settings.public_base_url,
        developer_name=developer_name,
        short_name=short_name,
        privacy_url=settings.privacy_url,
        terms_url=settings.terms_url,
    )
    problems = app.problems()
    if problems:
        raise click.ClickException("cannot make the Teams app:\n  " + "\n  ".join(problems))
    out.write_bytes(app.package())
    click.echo(f"wrote {out}: bot {app.bot_app_id}, valid domain {app.domain}")
