"""The ``m365perf`` command line: one module per command, registered here."""

from __future__ import annotations

from typing import Any

import click

from m365perf import __version__


class _Main(click.Group):
    """The command group; a bad setting ends any command with one line per bad variable,
    an unreachable database with one line saying which (without its password)."""

    def invoke(self, ctx: click.Context) -> Any:
        from m365perf.store.errors import StoreUnreachable

        try:
            return super().invoke(ctx)
        except StoreUnreachable as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:
            from m365perf.settings import is_settings_error, settings_problems

            if not is_settings_error(exc):
                raise
            lines = settings_problems(exc)  # type: ignore[arg-type]
            raise click.ClickException(
                "bad setting (see config/.env.example):\n  " + "\n  ".join(lines)
            ) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="m365perf")
def main() -> None:
    """Run a council's performance-management cycle on Microsoft 365."""


def _register() -> None:
    from m365perf.cli.audit import audit
    from m365perf.cli.correct import correct
    from m365perf.cli.cycle import cycle
    from m365perf.cli.db import db
    from m365perf.cli.delegate import away, delegate
    from m365perf.cli.demo import demo
    from m365perf.cli.doctor import doctor
    from m365perf.cli.export import export
    from m365perf.cli.health import health
    from m365perf.cli.history import history
    from m365perf.cli.links import links
    from m365perf.cli.plan import plan
    from m365perf.cli.provision import provision
    from m365perf.cli.report import report
    from m365perf.cli.sandbox import sandbox
    from m365perf.cli.serve import serve
    from m365perf.cli.spc import spc
    from m365perf.cli.teams_app import teams_app
    from m365perf.cli.validate import validate

    main.add_command(validate)
    main.add_command(plan)
    main.add_command(cycle)
    main.add_command(audit)
    main.add_command(correct)
    main.add_command(demo)
    main.add_command(doctor)
    main.add_command(serve)
    main.add_command(sandbox)
    main.add_command(provision)
    main.add_command(spc)
    main.add_command(db)
    main.add_command(health)
    main.add_command(teams_app)
    main.add_command(history)
    main.add_command(delegate)
    main.add_command(away)
    main.add_command(report)
    main.add_command(export)
    main.add_command(links)


_register()
