"""``m365perf cycle``: open, list, show, close and re-read reporting cycles by hand.

Every refusal (unknown flow, no such cycle, a closed cycle, an unreadable register)
is one ``Error:`` line on stderr (an empty cycle adds the rows at fault) and a non-zero
exit, never a traceback.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from m365perf.cli._common import (
    csv_errors_exit,
    fieldmap_or_exit,
    load_flow_or_exit,
    open_store,
    period_or_exit,
    register_options,
    sources,
)

if TYPE_CHECKING:
    from m365perf.domain.periods import Period
    from m365perf.flows import Flow
    from m365perf.plan.register import Indicator, RowProblem
    from m365perf.settings import Settings
    from m365perf.store import Cycle, CycleStatus, Return, Store, Transaction


class Refused(click.ClickException):
    """The engine or the cycle's state refused: one line on stderr, exit 1."""

    exit_code = 1


class NotFound(click.ClickException):
    """No such flow, period, state or cycle: one line on stderr, exit 2."""

    exit_code = 2


@click.group()
def cycle() -> None:
    """Manage reporting cycles."""


def _flow(ref: str) -> Flow:
    try:
        return load_flow_or_exit(ref)
    except click.BadParameter as exc:
        raise NotFound(exc.message) from None


def _period(flow: Flow, label: str) -> Period:
    try:
        return period_or_exit(flow, label)
    except click.BadParameter as exc:
        raise NotFound(f"--period: {exc.message}") from None


def _find_cycle(tx: Transaction, flow: Flow, period: Period) -> Cycle:
    found = tx.find_cycle(flow.id, period.label)
    if found is None or found.id is None:
        raise NotFound(f"{flow.id} has no cycle for {period.label}")
    return found


def _read_register(
    settings: Settings,
    store: Store,
    flow: Flow,
    register_csv: Path | None,
    directory_csv: Path | None,
    now: datetime,
) -> tuple[list[Indicator], list[RowProblem]]:
    """The register's indicators and problem rows, people copied into the store."""
    from m365perf.plan.fieldmap import FieldMapError
    from m365perf.sync import sync

    with csv_errors_exit():
        register, people = sources(settings, register_csv, directory_csv)
        if people is None:
            raise click.UsageError(
                "no tenant is configured: pass --register CSV and --directory CSV"
            )
        try:
            return sync(store, flow, register, people, now=now)
        except FieldMapError as exc:
            fieldmap_or_exit(flow, exc.problems)
            raise  # not reached: fieldmap_or_exit exits on any error


def _problems(problems: Sequence[RowProblem]) -> list[dict[str, str]]:
    return [{"indicator_id": u.indicator_id, "name": u.name, "reason": u.reason} for u in problems]


@cycle.command("open")
@click.argument("flow_ref", metavar="FLOW")
@register_options
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Open the cycle even if no indicator can be asked (`cycle resync` adds them later).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def open_(
    flow_ref: str,
    period_label: str,
    register_csv: Path | None,
    directory_csv: Path | None,
    allow_empty: bool,
    as_json: bool,
) -> None:
    """Open FLOW's cycle for a period now and queue every owner's request.

    Opening twice changes nothing. A cycle nobody could be asked for is refused
    (usually a bad register read) unless --allow-empty. `m365perf serve` sends what
    is queued.
    """
    from m365perf.engine import EmptyCycle, Engine
    from m365perf.plan.catchup import before_collect_from
    from m365perf.progress import reporting
    from m365perf.service import engine_config
    from m365perf.settings import load_settings

    settings = load_settings()
    flow = _flow(flow_ref)
    period = _period(flow, period_label)
    if before_collect_from(flow, period):
        raise Refused(
            f"{flow.id} collects from {flow.collect_from} (collect_from in its flow file): "
            f"{period.label} is before that, so it is not opened. Change collect_from to "
            "collect earlier periods."
        )
    progress = reporting(quiet=as_json)
    store = open_store(settings)
    try:
        now = datetime.now(UTC)
        progress.say(
            f"Reading the register ({register_csv or 'SharePoint'}) and the people it names"
        )
        indicators, problems = _read_register(
            settings, store, flow, register_csv, directory_csv, now
        )
        progress.say(
            f"{len(indicators)} indicators read ({len(problems)} problem rows); "
            f"opening {flow.name} {period.label}"
        )
        engine = Engine(store, [flow], engine_config(settings))
        try:
            opened = engine.open_cycle(
                flow.id, period, indicators, problems, now=now, actor="cli", allow_empty=allow_empty
            )
        except EmptyCycle as exc:
            lines = [exc.message]
            lines += [f"  {u.indicator_id}  {u.name}: {u.reason}" for u in exc.problems]
            lines.append("Fix the register, or pass --allow-empty to open the cycle anyway.")
            raise Refused("\n".join(lines)) from None
    finally:
        store.close()
    result = {
        "flow": flow.id,
        "period": period.label,
        "cycle_id": opened.cycle_id,
        "created": opened.created,
        "owners": opened.owners,
        "returns": opened.returns,
        "unroutable": _problems(opened.unroutable),
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif opened.created:
        click.echo(
            f"Opened {flow.name} {period.label} (cycle {opened.cycle_id}): "
            f"{opened.returns} return(s) asked of {opened.owners} owner(s); "
            f"{len(opened.unroutable)} cannot be routed."
        )
        for u in opened.unroutable:
            click.echo(f"  {u.indicator_id}  {u.name}: {u.reason}")
    else:
        click.echo(
            f"{flow.name} {period.label} is already open (cycle {opened.cycle_id}); "
            "nothing changed. `m365perf cycle resync` asks for indicators added since."
        )


@cycle.command("resync")
@click.argument("flow_ref", metavar="FLOW")
@register_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def resync(
    flow_ref: str,
    period_label: str,
    register_csv: Path | None,
    directory_csv: Path | None,
    as_json: bool,
) -> None:
    """Re-read the register for FLOW's open cycle and ask for what became routable.

    Indicators with no return in the cycle yet whose owner and approvers can now be
    found are added and their owners asked; what still cannot be routed is listed
    (and mailed to the performance team when that list changed). Running it again
    with the same register changes nothing. The service does this every weekday at
    the flow's opening time.
    """
    from m365perf.engine import CycleError, Engine
    from m365perf.service import engine_config
    from m365perf.settings import load_settings

    settings = load_settings()
    flow = _flow(flow_ref)
    period = _period(flow, period_label)
    store = open_store(settings)
    try:
        with store.transaction() as tx:
            _find_cycle(tx, flow, period)
        now = datetime.now(UTC)
        indicators, problems = _read_register(
            settings, store, flow, register_csv, directory_csv, now
        )
        engine = Engine(store, [flow], engine_config(settings))
        try:
            done = engine.resync_cycle(flow.id, period, indicators, problems, now=now, actor="cli")
        except CycleError as exc:
            raise Refused(exc.message) from None
    finally:
        store.close()
    if as_json:
        result = {
            "flow": flow.id,
            "period": period.label,
            "cycle_id": done.cycle_id,
            "round": done.round,
            "added": list(done.added),
            "owners": done.owners,
            "unroutable": _problems(done.unroutable),
            "reported": done.reported,
        }
        click.echo(json.dumps(result, indent=2))
        return
    head = f"{flow.name} {period.label} (cycle {done.cycle_id}): "
    if done.added:
        click.echo(
            f"{head}asked for {len(done.added)} more indicator(s) of {done.owners} owner(s): "
            + ", ".join(done.added)
        )
    else:
        click.echo(f"{head}nothing new to ask for.")
    if done.unroutable:
        mailed = " (the performance team is told)" if done.reported else ""
        click.echo(f"{len(done.unroutable)} still cannot be routed{mailed}:")
        for u in done.unroutable:
            click.echo(f"  {u.indicator_id}  {u.name}: {u.reason}")


@cycle.command("list")
@click.option("--flow", "flow_ref", help="Only this flow's cycles (id or flow file).")
@click.option(
    "--status",
    callback=lambda _ctx, _param, value: _cycle_status(value),
    help="Only cycles in this state (open, collecting or closed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the cycles as JSON.")
def list_(flow_ref: str | None, status: CycleStatus | None, as_json: bool) -> None:
    """List cycles: flow, period, state, due date and their returns by state."""
    from m365perf.settings import load_settings

    flow_id = _flow(flow_ref).id if flow_ref else None
    store = open_store(load_settings())
    try:
        with store.transaction() as tx:
            cycles = tx.list_cycles(flow_id=flow_id, status=status)
            rows = [_cycle_row(c, tx.list_returns(cycle_id=c.id)) for c in cycles]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No cycles.")
        return
    width = max(len(r["flow"]) for r in rows)
    for r in rows:
        click.echo(
            f"{r['flow']:<{width}}  {r['period']:<12} {r['status']:<11} due {r['due']}  "
            f"{_counts_text(r['returns'])}"
        )


def _cycle_status(value: str | None) -> CycleStatus | None:
    """A cycle state as the lifecycle names it (imported late: the store is slow to load)."""
    from m365perf.store import CycleStatus

    if value is None:
        return None
    try:
        return CycleStatus(value.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in CycleStatus)
        raise NotFound(f"--status: no state '{value}'; use one of {names}") from None


def _cycle_row(c: Cycle, returns: Sequence[Return]) -> dict[str, Any]:
    return {
        "cycle_id": c.id,
        "flow": c.flow_id,
        "period": c.period,
        "status": c.status.value,
        "opened_at": c.opened_at.isoformat(),
        "due": c.due_date.isoformat(),
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
        "returns": _counts(returns),
    }


def _counts(returns: Sequence[Return]) -> dict[str, int]:
    """Returns by state, every state the lifecycle has (zeros included), and the total."""
    from m365perf.store import ReturnStatus

    by_status = Counter(r.status.value for r in returns)
    return {s.value: by_status[s.value] for s in ReturnStatus} | {"total": len(returns)}


def _counts_text(counts: dict[str, int]) -> str:
    parts = [f"{n} {name}" for name, n in counts.items() if name != "total" and n]
    return f"{counts['total']} return(s)" + (": " + ", ".join(parts) if parts else "")


@cycle.command("show")
@click.argument("flow_ref", metavar="FLOW")
@click.option("--period", "period_label", required=True, help="e.g. 2026-10, '2026/27 Q2'")
@click.option("--json", "as_json", is_flag=True, help="Print the cycle as JSON.")
def show(flow_ref: str, period_label: str, as_json: bool) -> None:
    """Show a cycle: its dates and every return's owner, state, current step and lateness."""
    from m365perf.settings import load_settings

    flow = _flow(flow_ref)
    period = _period(flow, period_label)
    store = open_store(load_settings())
    try:
        with store.transaction() as tx:
            found = _find_cycle(tx, flow, period)
            detail = _cycle_detail(tx, flow, period, found, now=datetime.now(UTC))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(detail, indent=2))
    else:
        click.echo(_detail_text(detail))


def _cycle_detail(
    tx: Transaction, flow: Flow, period: Period, c: Cycle, *, now: datetime
) -> dict[str, Any]:
    """The cycle and each return: owner, state, the step it waits on (and who), lateness."""
    from m365perf.engine.context import local_day
    from m365perf.store import CycleStatus, ReturnStatus, StepStatus

    decided = {StepStatus.APPROVED, StepStatus.REJECTED, StepStatus.SKIPPED}
    with_owner = {ReturnStatus.AWAITING, ReturnStatus.REJECTED}
    overdue = c.status is not CycleStatus.CLOSED and local_day(now) > c.due_date
    people: dict[str, dict[str, str | None]] = {}

    def person(ref: str | None) -> dict[str, str | None]:
        if not ref:
            return {"id": None, "name": None, "email": None}
        if ref not in people:
            found = tx.find_person(ref)
            people[ref] = (
                {"id": found.id, "name": found.name, "email": found.email}
                if found
                else {"id": None, "name": ref, "email": ref if "@" in ref else None}
            )
        return people[ref]

    returns = tx.list_returns(cycle_id=c.id)
    items = []
    for ret in returns:
        indicator = tx.find_indicator(c.flow_id, ret.indicator_key)
        step = None
        if ret.status is ReturnStatus.RETURNED:
            current = next((s for s in tx.list_steps(ret.id or 0) if s.status not in decided), None)
            if current is not None:
                step = {
                    "name": current.name,
                    "index": current.step_index,
                    "status": current.status.value,
                    "approvers": [person(a) for a in current.approvers],
                }
        items.append(
            {
                "indicator_id": ret.indicator_key,
                "name": indicator.name if indicator else ret.indicator_key,
                "owner": person(ret.owner_id or ret.owner_email),
                "status": ret.status.value,
                "step": step,
                "late": ret.late or (overdue and ret.status in with_owner),
                "version": ret.version,
                "submitted_at": ret.submitted_at.isoformat() if ret.submitted_at else None,
            }
        )
    return {
        "cycle_id": c.id,
        "flow": c.flow_id,
        "flow_name": flow.name,
        "period": c.period,
        "status": c.status.value,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "opened_at": c.opened_at.isoformat(),
        "due": c.due_date.isoformat(),
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
        "counts": _counts(returns),
        "returns": items,
    }


def _detail_text(d: dict[str, Any]) -> str:
    closed = f"; closed {d['closed_at'][:16].replace('T', ' ')} UTC" if d["closed_at"] else ""
    lines = [
        f"{d['flow_name']} {d['period']} (cycle {d['cycle_id']}): {d['status']}",
        f"Period {d['period_start']} to {d['period_end']}; opened "
        f"{d['opened_at'][:16].replace('T', ' ')} UTC; due {d['due']}{closed}",
        _counts_text(d["counts"]),
    ]
    if d["returns"]:
        lines.append("")
    for r in d["returns"]:
        owner = r["owner"]
        who = owner["name"] or "no owner"
        if owner["email"] and owner["email"] != who:
            who += f" <{owner['email']}>"
        state = r["status"]
        if r["step"]:
            approvers = " or ".join(a["name"] or "?" for a in r["step"]["approvers"])
            state += f", at {r['step']['name']} ({approvers})"
        late = ", LATE" if r["late"] else ""
        lines.append(f"  {r['indicator_id']}  {r['name']}")
        lines.append(f"      {who}: {state}{late}")
    return "\n".join(lines)


@cycle.command("close")
@click.argument("flow_ref", metavar="FLOW")
@click.option("--period", "period_label", required=True, help="e.g. 2026-10, '2026/27 Q2'")
@click.option("--reason", required=True, help="Why it is closed by hand (kept in the audit).")
@click.option("--by", "by", default="cli", help="Who closes it (e-mail), for the audit.")
def close(flow_ref: str, period_label: str, reason: str, by: str) -> None:
    """Close FLOW's cycle for a period: returns still outstanding become missed."""
    from m365perf.engine import ActionError, CycleError, Engine
    from m365perf.service import engine_config
    from m365perf.settings import load_settings
    from m365perf.store import CycleStatus, StoreError

    if not reason.strip():
        raise NotFound("--reason: say why the cycle is closed")
    settings = load_settings()
    flow = _flow(flow_ref)
    period = _period(flow, period_label)
    store = open_store(settings)
    try:
        with store.transaction() as tx:
            found = _find_cycle(tx, flow, period)
            if found.status is CycleStatus.CLOSED:
                when = f"{found.closed_at:%Y-%m-%d %H:%M} UTC" if found.closed_at else "before"
                raise Refused(f"{flow.id} {period.label} is already closed ({when})")
            person = tx.find_person(by)
        engine = Engine(store, [flow], engine_config(settings))
        try:
            engine.close_cycle(
                found.id or 0, by=person.id if person else by, reason=reason, now=datetime.now(UTC)
            )
        except (ActionError, CycleError) as exc:
            raise Refused(exc.message) from None
        except (StoreError, LookupError) as exc:
            raise Refused(str(exc)) from None
        with store.transaction() as tx:
            counts = _counts(tx.list_returns(cycle_id=found.id))
    finally:
        store.close()
    click.echo(
        f"Closed {flow.name} {period.label} (cycle {found.id}): "
        f"{counts.get('missed', 0)} return(s) missed. {_counts_text(counts)}."
    )
