"""What several commands share: finding flows, opening the store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from m365perf.flows import Flow, FlowError, flow_files, load_flow
from m365perf.settings import Settings
from m365perf.store import Store, create_store

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


def open_store(settings: Settings) -> Store:
    """The configured store, migrated to the current schema."""
    return create_store(settings.database_url, migrate=True)
