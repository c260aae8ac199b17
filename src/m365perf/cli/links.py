"""``m365perf links revoke``: end the web-form links of a person or of a cycle.

Links are signed as e-mails go and never stored, so revoking records a cut-off: every
link of that person (any cycle) or that cycle (any owner) signed until now is refused
by the form with a page saying it was withdrawn; a card sent later carries a new link.
The revocation is in the audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from m365perf.cli._common import open_store


@click.group()
def links() -> None:
    """The owners' web-form links."""


@links.command("revoke")
@click.option("--person", help="UPN, e-mail or Entra object id whose links end (every cycle).")
@click.option("--cycle", "cycle_id", type=click.IntRange(min=1), help="Cycle whose links end.")
@click.option("--by", "by", required=True, help="E-mail of who revokes them (for the audit).")
@click.option("--reason", default="", help="Why, for the audit trail.")
def revoke(person: str | None, cycle_id: int | None, by: str, reason: str) -> None:
    """End every web-form link of --person or of --cycle issued until now."""
    from m365perf.engine import ActionError
    from m365perf.engine.links import revoke_links
    from m365perf.settings import load_settings

    store = open_store(load_settings())
    try:
        row = revoke_links(
            store, person=person, cycle_id=cycle_id, by=by, reason=reason, now=datetime.now(UTC)
        )
    except ActionError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    whose = f"cycle {row.cycle_id}" if row.cycle_id is not None else person
    click.echo(
        f"Revoked every web-form link of {whose} issued until {row.revoked_at:%Y-%m-%d %H:%M} UTC."
    )
