"""``m365perf report``: reports on the cycles the service has run.

A minimal group so the exceptions report can register; its subcommands live in their
own modules (``report_exceptions``).
"""

from __future__ import annotations

import click


@click.group()
def report() -> None:
    """Reports for the performance team, SLT and scrutiny."""


def _register() -> None:
    from m365perf.cli.report_exceptions import exceptions

    report.add_command(exceptions)


_register()
