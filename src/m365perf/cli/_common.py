"""What several commands share: finding flows, opening the store."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from m365perf.flows import Flow, FlowError, flow_files, load_flow

if TYPE_CHECKING:
    from m365perf.domain.periods import Period
    from m365perf.plan.fieldmap import FieldMapProblem
    from m365perf.settings import Settings
    from m365perf.store import Cycle, Store, Transaction
    from m365perf.sync import PeopleSource, RegisterSource

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INVALID = 2


def load_flow_or_exit(ref: str, flows_dir: Path = Path("flows")) -> Flow:
    """A flow by path, or by id among the flows in ``flows_dir``; errors end the command."""
    path = Path(ref)
    if not path.exists():
        candidates = (
            [p for p in flow_files([flows_dir]) if p.stem == ref] if flows_dir.is_dir() else []
        )
        if not candidates:
            raise click.BadParameter(f"no flow file or flow id '{ref}' (looked in {flows_dir}/)")
        path = candidates[0]
    try:
        return load_flow(path)
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        sys.exit(EXIT_INVALID)


def load_flows_or_exit(flows_dir: Path) -> list[Flow]:
    flows = []
    for path in flow_files([flows_dir]):
        flows.append(load_flow_or_exit(str(path)))
    return flows


def open_store(settings: Settings, *, reading: bool = False) -> Store:
    """The configured store, migrated to the current schema.

    ``reading``: the command only reads, so a SQLite file that does not exist yet is
    refused rather than created empty (where a typo in the path would hide the real one).
    """
    from sqlalchemy.engine import make_url

    from m365perf.store import create_store

    url = make_url(settings.database_url)
    if (
        reading
        and url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
    ):
        path = Path(url.database or "")
        if not path.exists():
            raise click.ClickException(
                f"no database at {path} (M365PERF_DATABASE_URL): nothing to read yet; "
                "open a cycle first, or point M365PERF_DATABASE_URL at the council's database"
            )
    return create_store(settings.database_url, migrate=True)


def register_options(command: F) -> F:
    """--period, --register CSV and --directory CSV, shared by plan and cycle open."""
    command = click.option(
        "--directory",
        "directory_csv",
        type=click.Path(exists=True, path_type=Path),
        help="People CSV (id,name,email,line_manager) instead of Entra ID.",
    )(command)
    command = click.option(
        "--register",
        "register_csv",
        type=click.Path(exists=True, path_type=Path),
        help="Read the register from this CSV instead of SharePoint.",
    )(command)
    return click.option(
        "--period", "period_label", required=True, help="e.g. 2026-10, '2026/27 Q2', 2026/27"
    )(command)


def period_or_exit(flow: Flow, label: str, option: str = "--period") -> Period:
    """The period for the flow's frequency, or a usage error saying what works."""
    from m365perf.domain.periods import Period, PeriodError

    try:
        return Period.parse_for(flow.frequency, label)
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def sources(
    settings: Settings, register_csv: Path | None, directory_csv: Path | None
) -> tuple[RegisterSource, PeopleSource | None]:
    """Where the register and its people come from: the CSVs given, else the tenant.

    People are None when neither a directory CSV nor a tenant is there.
    """
    from m365perf.sync import CsvPeople, CsvRegister, EntraPeople, SharePointRegister

    graph = None
    if (register_csv is None or directory_csv is None) and settings.has_tenant:
        from m365perf.m365 import clients_from_settings

        graph = clients_from_settings(settings).graph
    if register_csv is not None:
        register: RegisterSource = CsvRegister(register_csv)
    elif graph is not None:
        register = SharePointRegister(graph)
    else:
        raise click.UsageError("no tenant is configured: pass --register CSV")
    if directory_csv is not None:
        return register, CsvPeople(directory_csv)
    return register, EntraPeople(graph) if graph is not None else None


@contextmanager
def csv_errors_exit() -> Iterator[None]:
    """A register or directory CSV that cannot be read ends the command with why, in one line."""
    from m365perf.csvfiles import UnreadableCsv

    try:
        yield
    except UnreadableCsv as exc:
        raise click.ClickException(str(exc)) from None


def fieldmap_or_exit(flow: Flow, problems: Sequence[FieldMapProblem]) -> None:
    """End the command (exit 2) when the flow names register columns the register lacks."""
    from m365perf.plan.fieldmap import errors, problem_lines

    found = errors(problems)
    if found:
        for line in problem_lines(flow, found):
            click.echo(f"Error: {line}" if not line.startswith("  ") else line, err=True)
        sys.exit(EXIT_INVALID)


def find_cycle_or_exit(tx: Transaction, cycle_ref: str) -> Cycle:
    """A cycle by id, or by FLOW:PERIOD (``monthly-corporate-kpis:2026-10``)."""
    if cycle_ref.isdigit():
        found = next((c for c in tx.list_cycles() if c.id == int(cycle_ref)), None)
    else:
        flow_id, _, period = cycle_ref.partition(":")
        found = tx.find_cycle(flow_id, period)
    if found is None:
        raise click.BadParameter(f"no cycle '{cycle_ref}'", param_hint="--cycle")
    return found
