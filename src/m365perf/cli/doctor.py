"""``m365perf doctor``: check the configured tenant end to end; nothing is changed or sent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--flows",
    "flows_dir",
    default=Path("flows"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="The folder of flow files whose lists, columns and dataset are checked.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for monitoring.")
def doctor(flows_dir: Path, as_json: bool) -> None:
    """Check tokens, lists, columns, indexes, mailbox, bot endpoint and Power BI.

    One line per check, pass or fail, with how to fix a failure. Exit 1 if any fails.
    """
    from m365perf.settings import load_settings
    from m365perf.tenant.doctor import run_doctor

    report = run_doctor(load_settings(), flows_dir)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.text())
    sys.exit(0 if report.ok else 1)
