"""``m365perf delegate`` and ``m365perf away``: who acts for an approver on which days.

Days are London dates, both ends included. The people must be in the directory (the
store's people, synced from the register's directory when a cycle opens). Steps already
waiting for the approver are sent to the delegate at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from m365perf.cli._common import load_flows_or_exit, open_store

if TYPE_CHECKING:
    from m365perf.engine import Engine
    from m365perf.store import Store

F = TypeVar("F", bound=Callable[..., Any])
_DAY = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


def _engine(store: Store, flows_dir: Path) -> Engine:
    from m365perf.engine import Engine
    from m365perf.service import engine_config
    from m365perf.settings import load_settings

    flows = load_flows_or_exit(flows_dir) if flows_dir.is_dir() else []
    return Engine(store, flows, engine_config(load_settings()))


def _flows_option(command: F) -> F:
    return click.option(
        "--flows",
        "flows_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("flows"),
        show_default=True,
        help="Folder of flow files (for --flow and the cards already waiting).",
    )(command)


def _record(
    *,
    approver: str,
    delegate: str | None,
    starts: datetime,
    ends: datetime,
    flow_id: str | None,
    by: str,
    flows_dir: Path,
) -> None:
    from m365perf.engine import ActionError
    from m365perf.settings import load_settings

    store = open_store(load_settings())
    try:
        engine = _engine(store, flows_dir)
        row = engine.add_delegation(
            approver=approver,
            delegate=delegate,
            starts_on=starts.date(),
            ends_on=ends.date(),
            flow_id=flow_id,
            by=by,
            now=datetime.now(UTC),
        )
        (view,) = [v for v in engine.delegations(include_ended=True) if v.id == row.id]
    except ActionError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    click.echo(f"Recorded {view.label}.")


@click.group()
def delegate() -> None:
    """Name who acts for an approver while they are away, list and end delegations."""


@delegate.command("add")
@click.option("--approver", required=True, help="E-mail of the approver who is away.")
@click.option("--delegate", "delegate_ref", required=True, help="E-mail of who acts for them.")
@click.option("--from", "starts", type=_DAY, required=True, help="First day (YYYY-MM-DD).")
@click.option("--to", "ends", type=_DAY, required=True, help="Last day, included.")
@click.option("--flow", "flow_id", help="Only this flow's approvals (default: every flow).")
@click.option("--by", "by", required=True, help="E-mail of who records it.")
@_flows_option
def add(
    approver: str,
    delegate_ref: str,
    starts: datetime,
    ends: datetime,
    flow_id: str | None,
    by: str,
    flows_dir: Path,
) -> None:
    """Let DELEGATE approve for APPROVER from --from to --to (London days, both included)."""
    _record(
        approver=approver,
        delegate=delegate_ref,
        starts=starts,
        ends=ends,
        flow_id=flow_id,
        by=by,
        flows_dir=flows_dir,
    )


@delegate.command("list")
@click.option("--person", help="Only delegations of this person (as approver or delegate).")
@click.option("--on", "on", type=_DAY, help="Only those that apply on this day.")
@click.option("--all", "include_ended", is_flag=True, help="Include ended delegations.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(person: str | None, on: datetime | None, include_ended: bool, as_json: bool) -> None:
    """Delegations and away markings, with names."""
    from m365perf.engine import ActionError
    from m365perf.engine.delegation import delegation_views
    from m365perf.settings import load_settings

    store = open_store(load_settings())
    try:
        views = delegation_views(store, person=person, on=_day(on), include_ended=include_ended)
    except ActionError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": v.id,
                        "approver": v.approver.email,
                        "approver_name": v.approver.name,
                        "delegate": v.delegate.email if v.delegate else None,
                        "delegate_name": v.delegate.name if v.delegate else None,
                        "flow": v.flow_id,
                        "from": v.starts_on.isoformat(),
                        "to": v.ends_on.isoformat(),
                        "ended": v.ended,
                    }
                    for v in views
                ],
                indent=2,
            )
        )
        return
    if not views:
        click.echo("No delegations.")
    for view in views:
        click.echo(view.label)


@delegate.command("end")
@click.argument("delegation_id", type=int)
@click.option("--by", "by", required=True, help="E-mail of who ends it.")
@_flows_option
def end(delegation_id: int, by: str, flows_dir: Path) -> None:
    """End a delegation now; from now on the approver decides alone."""
    from m365perf.engine import ActionError
    from m365perf.settings import load_settings

    store = open_store(load_settings())
    try:
        engine = _engine(store, flows_dir)
        engine.end_delegation(delegation_id, by=by, now=datetime.now(UTC))
    except ActionError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    click.echo(f"Delegation {delegation_id} ended.")


@click.command()
@click.option("--person", required=True, help="E-mail of the approver who is away.")
@click.option("--from", "starts", type=_DAY, required=True, help="First day (YYYY-MM-DD).")
@click.option("--to", "ends", type=_DAY, required=True, help="Last day, included.")
@click.option("--flow", "flow_id", help="Only this flow's approvals (default: every flow).")
@click.option("--by", "by", required=True, help="E-mail of who records it.")
@_flows_option
def away(
    person: str, starts: datetime, ends: datetime, flow_id: str | None, by: str, flows_dir: Path
) -> None:
    """Mark an approver away with nobody named: flows with ``approval.when_away:
    line_manager`` ask their line manager instead."""
    _record(
        approver=person,
        delegate=None,
        starts=starts,
        ends=ends,
        flow_id=flow_id,
        by=by,
        flows_dir=flows_dir,
    )
