"""The ``m365perf`` command line: one module per command, registered here."""

from __future__ import annotations

import click

from m365perf import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="m365perf")
def main() -> None:
    """Run a council's performance-management cycle on Microsoft 365."""


def _register() -> None:
    from m365perf.cli.audit import audit
    from m365perf.cli.correct import correct
    from m365perf.cli.cycle import cycle
    from m365perf.cli.demo import demo
    from m365perf.cli.plan import plan
    from m365perf.cli.provision import provision
    from m365perf.cli.sandbox import sandbox
    from m365perf.cli.serve import serve
    from m365perf.cli.spc import spc
    from m365perf.cli.validate import validate

    main.add_command(validate)
    main.add_command(plan)
    main.add_command(cycle)
    main.add_command(audit)
    main.add_command(correct)
    main.add_command(demo)
    main.add_command(serve)
    main.add_command(sandbox)
    main.add_command(provision)
    main.add_command(spc)


_register()
