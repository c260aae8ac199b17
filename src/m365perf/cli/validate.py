"""``m365perf validate``: check flow files before they go live."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from m365perf.flows import FlowError, flow_files, load_flow
from m365perf.flows.loader import FlowProblem

EXIT_INVALID = 2


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check flow files (or directories of them); print file:line:col: message per error.

    Exits 0 when every file is valid, 2 otherwise.
    """
    problems: list[FlowProblem] = []
    files = flow_files(paths)
    for path in paths:
        if path.is_dir() and not any(f.parent == path for f in files):
            problems.append(FlowProblem(str(path), 1, 1, "no flow files (*.yaml) in directory"))
    checked = 0
    for path in files:
        checked += 1
        try:
            load_flow(path)
        except FlowError as exc:
            problems.extend(exc.problems)
    for problem in problems:
        click.echo(str(problem), err=False)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked} file(s)", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(f"{checked} flow file(s) valid", err=True)
