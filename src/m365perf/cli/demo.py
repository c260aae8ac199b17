"""``m365perf demo``: rehearse a whole cycle against the local sandbox."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from m365perf.cli._common import load_flow_or_exit
from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period, PeriodError
from m365perf.examples import FLOWS_DIR
from m365perf.flows import Flow, flow_files

if TYPE_CHECKING:
    from m365perf.live_demo import LiveRehearsal
    from m365perf.progress import Progress

# The packaged examples rehearsed by default: all three (e-mail, Teams and both).
DEFAULT_FLOWS = (
    "annual-statutory-returns.yaml",
    "quarterly-service-standards.yaml",
    "monthly-corporate-kpis.yaml",
)
# A period of each frequency the sandbox's seeded register and history can rehearse.
DEFAULT_PERIODS = {
    frequency: Period.containing(frequency, day).label
    for frequency, day in (
        (Frequency.ANNUAL, date(2025, 4, 1)),
        (Frequency.QUARTERLY, date(2026, 7, 1)),
        (Frequency.MONTHLY, date(2026, 10, 1)),
    )
}


SLOW_S = 4.0
"""How long the sandbox holds a slow response under --faults: twice the clients' read
timeout in the rehearsal, so the client gives up on every slow one."""


@click.command()
@click.option(
    "--auto",
    is_flag=True,
    help="Simulated officers and approvers click for you (without it: you click, in the "
    "sandbox's inbox pages, until Ctrl-C).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document.")
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Rehearse every flow in this folder (default: the three packaged examples, "
    "annual statutory returns, quarterly service standards and monthly KPIs, over the "
    "whole register, wherever you run this).",
)
@click.option(
    "--period",
    "period_choices",
    multiple=True,
    metavar="FLOW=PERIOD",
    help="The period to rehearse for a flow id, e.g. monthly-corporate-kpis=2026-11 "
    f"(default: {', '.join(DEFAULT_PERIODS.values())} by frequency).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the sandbox and the database here (default: a temporary folder, removed "
    "afterwards; nothing is written where you run this).",
)
@click.option(
    "--faults",
    "fault_rate",
    type=click.FloatRange(0, 1),
    help="Break this share of every request the sandbox serves (0.2: 20%; 429s, 503s, "
    "slow answers, connections dropped after the write), then run the same rehearsal "
    "without faults and check both end the same.",
)
@click.option(
    "--fault-seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the fault dice: the same seed breaks the same requests.",
)
def demo(
    auto: bool,
    as_json: bool,
    flows_dir: Path | None,
    period_choices: tuple[str, ...],
    workdir: Path | None,
    fault_rate: float | None,
    fault_seed: int,
) -> None:
    """Start the sandbox, seed the Coventry register and run one full cycle of each flow.

    With --auto, simulated officers return their figures (one late), approvers approve
    (one rejection, then a resubmission), results are written back to SharePoint and
    Power BI is refreshed. Every click goes through the real bot endpoint.

    Without --auto, the cycles are opened and nobody is simulated: it prints the inbox
    pages of the officers and approvers (Teams chat and mailbox, cards drawn by
    Microsoft's renderer) for you to play them in a browser, and runs until Ctrl-C
    (--json: the links as one JSON document).

    With --faults RATE it rehearses twice, with and without faults, and says whether the
    SharePoint results, the audit trail and the Power BI history came out the same.
    """
    from m365perf.demo import DemoError, run_demo
    from m365perf.progress import reporting

    if os.environ.get("M365PERF_LOG_FORMAT") or os.environ.get("M365PERF_LOG_LEVEL"):
        # Asked for: the service's log on stderr, as `serve` writes it (else only warnings).
        from m365perf.logs import configure_logging
        from m365perf.settings import load_settings

        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)

    if flows_dir is None:
        flows = [load_flow_or_exit(str(FLOWS_DIR / name)) for name in DEFAULT_FLOWS]
    else:
        flows = [load_flow_or_exit(str(path)) for path in flow_files([flows_dir])]
        if not flows:
            raise click.BadParameter(f"no *.yaml flow files in {flows_dir}", param_hint="--flows")
    periods = _periods(flows, period_choices)
    if fault_rate is not None and not auto:
        raise click.UsageError("--faults rehearses with simulated people: add --auto")
    if not auto:
        _live(flows, periods, workdir, as_json=as_json)
        return
    progress = reporting(quiet=as_json, lines_elsewhere=True)
    if fault_rate is not None:
        _demo_under_faults(flows, periods, workdir, fault_rate, fault_seed, as_json, progress)
        return
    try:
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="m365perf-demo-") as tmp:
                summary = run_demo(flows, Path(tmp), periods=periods, progress=progress)
        else:
            summary = run_demo(flows, workdir, periods=periods, progress=progress)
    except DemoError as exc:
        click.echo(f"demo failed: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(_text(summary, flows, periods, workdir))


def _demo_under_faults(
    flows: list[Flow],
    periods: dict[str, str],
    workdir: Path | None,
    rate: float,
    seed: int,
    as_json: bool,
    progress: Progress,
) -> None:
    """The rehearsal without faults, then with them; exit 1 if they end differently."""
    from m365perf.demo import DemoError, rehearse

    with contextlib.ExitStack() as stack:
        base = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="m365")))
        try:
            progress.say("Rehearsing without faults first")
            clean, expected = rehearse(
                flows, base / "fault-free", periods=periods, progress=progress
            )
            progress.say(f"Rehearsing again with {rate:.0%} of requests broken (seed {seed})")
            faulty, got = rehearse(
                flows,
                base / "faults",
                periods=periods,
                faults=f"{rate},slow_s={SLOW_S}",
                fault_seed=seed,
                read_timeout_s=SLOW_S / 2,
                progress=progress,
            )
        except DemoError as exc:
            click.echo(f"demo failed: {exc}", err=True)
            sys.exit(1)
    differences = expected.differences(got)
    if as_json:
        document = {"fault_free": clean, "faults": faulty, "differences": differences}
        click.echo(json.dumps({"rate": rate, "seed": seed, **document}, indent=2))
    else:
        broken = faulty["injected"]
        parts = ", ".join(f"{n} {what}" for what, n in sorted(broken.items())) or "none"
        click.echo(_text(faulty, flows, periods, workdir))
        total = sum(broken.values())
        click.echo(f"Faults injected at {rate:.0%} (seed {seed}): {total} ({parts}).")
        if differences:
            click.echo("The result DIFFERS from the fault-free run:")
            click.echo("\n".join(f"  {line}" for line in differences))
        else:
            click.echo(
                "The result equals the fault-free run: the same SharePoint results "
                f"({faulty['sandbox']['results_rows']} rows), audit trail "
                f"({faulty['audit_events']} events) and Power BI history "
                f"({faulty['sandbox']['powerbi_refresh_history']} refreshes)."
            )
    if differences:
        sys.exit(1)


def _live(
    flows: list[Flow], periods: dict[str, str], workdir: Path | None, *, as_json: bool
) -> None:
    """Open the cycles, print whose inbox to open, and keep everything running until Ctrl-C."""
    from m365perf.errors import M365PerfError
    from m365perf.live_demo import live_rehearsal

    with contextlib.ExitStack() as stack:
        folder = workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="m365perf-demo-"))
        )
        try:
            live = stack.enter_context(live_rehearsal(flows, folder, periods=periods))
        except M365PerfError as exc:  # the renderer missing, a cycle that cannot open
            click.echo(f"demo failed: {exc}", err=True)
            sys.exit(1)
        if as_json:
            click.echo(json.dumps(live.as_json()))
        else:
            click.echo(_live_text(live))
        sys.stdout.flush()
        stop = threading.Event()
        # Ctrl-C, and a service manager's TERM, stop it cleanly: the sandbox is not left
        # behind. INT is handled here too, not left to KeyboardInterrupt: a process started
        # in the background of a script inherits INT ignored, and Python then never raises it.
        for stopping in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stopping, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        click.echo("Stopping the rehearsal.")


def _live_text(live: LiveRehearsal) -> str:
    lines = [f"Rehearsal open ({', '.join(live.cycles)}): play the people in a browser."]
    for title, links in (
        ("Officers (fill in and submit the request card)", live.officers),
        ("Approvers (approve, or reject with a reason)", live.approvers),
    ):
        lines += ["", f"{title}:"]
        lines += [f"  {link.name}: {link.url}\n      {link.does}" for link in links]
    lines += [
        "",
        f"The status page: {live.status_url} (sign in as the performance team: "
        f"{', '.join(live.staff)})",
        f"Everyone in the sandbox: {live.sandbox_url}/_sandbox/",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _periods(flows: list[Flow], choices: tuple[str, ...]) -> dict[str, str]:
    """Each flow's period: the one asked for with --period, else its frequency's default."""
    by_id = {flow.id: flow for flow in flows}
    periods = {flow.id: DEFAULT_PERIODS[flow.frequency] for flow in flows}
    for choice in choices:
        flow_id, sep, label = choice.partition("=")
        if not sep or flow_id not in by_id:
            raise click.BadParameter(
                f"{choice!r}: expected FLOW=PERIOD with FLOW one of {', '.join(sorted(by_id))}",
                param_hint="--period",
            )
        try:
            periods[flow_id] = Period.parse_for(by_id[flow_id].frequency, label).label
        except PeriodError as exc:
            raise click.BadParameter(f"{choice!r}: {exc}", param_hint="--period") from exc
    return periods


def _text(
    s: dict[str, Any], flows: list[Flow], periods: dict[str, str], workdir: Path | None
) -> str:
    box = s["sandbox"]
    cycles = ", ".join(f"{flow.name} {periods[flow.id]}" for flow in flows)
    kept = (
        f"The database and the sandbox's state are kept in {workdir}."
        if workdir is not None
        else "Use --json for the machine-readable summary, --workdir DIR to keep the database."
    )
    per_flow = [
        f"  {f['name']} {f['period']}: {f['indicators']} indicators asked, {f['returns']} "
        f"returned, {f['approved']} approved; {f['unroutable']} could not be routed"
        for f in s["flows"]
    ]
    return "\n".join(
        [
            f"Rehearsal finished ({cycles}):",
            *per_flow,
            f"  {s['requests_sent']} requests sent to owners for {s['indicators']} indicators; "
            f"{s['returns']} returned ({s['late']} late), "
            f"self-return rate {s['self_return_rate']:.1%}",
            f"  {s['approved']} approved; {s['rejected']} rejected and resubmitted; "
            f"at most {box['most_approval_messages_per_approver_cycle_step']} approval "
            "card(s) per approver per cycle and step",
            f"  {s['written_back']} rows upserted into SharePoint 'KPI Results' "
            f"(the list holds {box['results_rows']}, {box['distinct_keys']} distinct keys)",
            f"  {s['powerbi_refreshes']} Power BI refreshes (the dataset's history shows "
            f"{box['powerbi_refresh_history']})",
            f"  {s['audit_events']} audit events; {s['parked']} messages could not be sent",
            kept,
        ]
    )
