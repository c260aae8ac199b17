"""``m365perf db``: the store's schema, migrated on purpose (a container's start, an upgrade)."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """The state store's schema."""


@db.command()
def upgrade() -> None:
    """Bring the configured database (M365PERF_DATABASE_URL) to this version's schema.

    Safe to run again, and from several instances at once; `serve` does the same on start
    unless M365PERF_MIGRATE_ON_START=false or `serve --no-migrate`.
    """
    from m365perf.settings import load_settings
    from m365perf.store import migrate

    url = load_settings().database_url
    before = _current_or_exit(url)
    try:
        migrate.upgrade(url)
    except Exception as exc:  # a database that cannot be reached or refuses: say so
        raise click.ClickException(f"could not migrate the database: {_one_line(exc)}") from None
    after = migrate.current_revision(url)
    if before == after:
        click.echo(f"the database is already at schema revision {after}")
    else:
        click.echo(f"the database is now at schema revision {after} (was {before or 'empty'})")


@db.command()
def current() -> None:
    """Print the database's schema revision and the one this version needs."""
    from m365perf.settings import load_settings
    from m365perf.store import migrate

    url = load_settings().database_url
    at, head = _current_or_exit(url), migrate.head_revision()
    click.echo(f"database: {at or 'empty'}; this version needs: {head}")
    if at != head:
        raise click.exceptions.Exit(1)


def _current_or_exit(url: str) -> str | None:
    from m365perf.store import migrate

    try:
        return migrate.current_revision(url)
    except Exception as exc:  # unreachable, wrong password, not a database
        raise click.ClickException(f"could not read the database: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
