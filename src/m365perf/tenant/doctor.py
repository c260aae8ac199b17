"""``m365perf doctor``: a configured tenant checked end to end, one line per check.

Each check says pass, warn, fail or not checked and, when it does not pass, how to fix
it. Nothing is changed and nothing is sent: the mailbox check reads the mailbox's user
and the token's roles (a tenant-wide Mail.Send is a warning), the bot check posts an
unsigned activity that a healthy endpoint refuses, the Power BI check reads the refresh
history. What a check cannot prove is said in its text. The same checks are listed on
every run (those that need a token that was refused say "not checked"), so monitoring
always sees the same set.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import requests

from m365perf.flows import Flow, FlowError, flow_files, load_flow
from m365perf.m365.auth import TokenProvider
from m365perf.m365.errors import AuthError, M365Error, NotFound, Unauthorized
from m365perf.m365.factory import M365, Tokens, clients_from_settings, tokens_from_settings
from m365perf.m365.http import new_session
from m365perf.plan.fieldmap import (
    FieldMapProblem,
    RegisterColumn,
    applied_locally,
    check_field_map,
    columns_from_definitions,
    problem_lines,
)
from m365perf.settings import Settings
from m365perf.tenant.lists import ANY_TYPE, BUILTIN_COLUMNS, results_list

Status = Literal["pass", "fail", "warn", "not checked"]
LONDON = ZoneInfo("Europe/London")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and the fix when it failed."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        label = "SKIP" if self.status == "not checked" else self.status.upper()
        text = f"{label:4}  {self.name}: {self.detail}"
        return text + (f"\n      fix: {self.fix}" if self.fix and self.status != "pass" else "")

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """No check failed (warnings do not fail)."""
        return all(c.status != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def text(self) -> str:
        failed = sum(c.status == "fail" for c in self.checks)
        unchecked = sum(c.status == "not checked" for c in self.checks)
        summary = (
            f"all {len(self.checks)} checks passed"
            if failed == 0 and unchecked == 0
            else f"{failed} of {len(self.checks)} checks failed"
        )
        if unchecked:
            summary += f", {unchecked} not checked"
        return "\n".join([*(c.line() for c in self.checks), summary])


# --------------------------------------------------------------------------- flows


def load_flows(flows_dir: Path) -> tuple[list[Flow], Check]:
    """The flows that validate, and the check saying which did not."""
    files = flow_files([flows_dir]) if flows_dir.is_dir() else []
    if not files:
        return [], Check(
            "flows validate",
            "fail",
            f"no flow files in {flows_dir}/",
            "pass --flows DIR, the folder of your flows/*.yaml",
        )
    flows: list[Flow] = []
    problems: list[str] = []
    for path in files:
        try:
            flows.append(load_flow(path))
        except FlowError as exc:
            problems += [str(p) for p in exc.problems]
    if problems:
        return flows, Check(
            "flows validate",
            "fail",
            f"{len(problems)} problem(s): " + "; ".join(problems[:5]),
            f"fix the flow files (m365perf validate {flows_dir})",
        )
    return flows, Check("flows validate", "pass", f"{len(flows)} flow(s) in {flows_dir}/")


# --------------------------------------------------------------------------- tokens


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT access token, unverified (only to read what was granted)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


_RESOURCES = (
    ("graph", "Microsoft Graph"),
    ("powerbi", "Power BI"),
    ("bot", "Bot Framework"),
)


def _token_fix(settings: Settings, exc: AuthError) -> str:
    text = str(exc)
    if "invalid_client" in text or "AADSTS7000215" in text:
        return (
            "the client secret (or certificate) is wrong or expired: make a new one in "
            "Entra ID → App registrations → your app → Certificates & secrets and set "
            "M365PERF_CLIENT_SECRET (or M365PERF_CERTIFICATE_PATH)"
        )
    if "unauthorized_client" in text or "AADSTS700016" in text:
        return (
            f"no app {settings.client_id} in tenant {settings.tenant_id}: check "
            "M365PERF_CLIENT_ID and M365PERF_TENANT_ID"
        )
    if exc.transient:
        return f"the login service at {settings.login_base_url} did not answer; try again"
    return "check M365PERF_TENANT_ID, M365PERF_CLIENT_ID and the secret or certificate"


def token_checks(settings: Settings, tokens: Tokens) -> tuple[list[Check], dict[str, str]]:
    """One check per resource; the tokens that were issued, by resource."""
    checks: list[Check] = []
    issued: dict[str, str] = {}
    for key, label in _RESOURCES:
        provider: TokenProvider = getattr(tokens, key)
        try:
            issued[key] = provider.token()
        except AuthError as exc:
            checks.append(Check(f"token: {label}", "fail", str(exc), _token_fix(settings, exc)))
            continue
        roles = token_claims(issued[key]).get("roles") or [] if key == "graph" else []
        detail = "issued" + (f"; app roles: {', '.join(sorted(roles))}" if roles else "")
        checks.append(Check(f"token: {label}", "pass", detail))
    return checks, issued


# --------------------------------------------------------------------------- SharePoint


def _graph_fix(exc: M365Error, site: str, title: str) -> str:
    if isinstance(exc, NotFound):
        return (
            f"check the site ({site}) and list title ('{title}') in the flow file; with "
            "Sites.Selected the app needs a grant on that site"
        )
    if isinstance(exc, Unauthorized):
        return (
            f"grant the app read (register) or write (results) on {site}: "
            "Sites.Selected with a per-site grant, or Sites.ReadWrite.All"
        )
    return "Microsoft Graph did not answer as expected; try again, then check the tenant"


def _list_id(m365: M365, site: str, title: str) -> tuple[str, str]:
    host, _, path = site.partition(":")
    site_id = m365.graph.get_site_id(host, path)
    return site_id, m365.graph.get_list_id(site_id, title)


def register_checks(m365: M365, flow: Flow) -> list[Check]:
    """The register list is reachable and has every column the flow names, indexed."""
    name = f"register ({flow.id})"
    source = flow.source
    try:
        site_id, list_id = _list_id(m365, source.site, source.list_title)
        columns = columns_from_definitions(m365.graph.list_columns(site_id, list_id))
    except M365Error as exc:
        return [
            Check(
                name,
                "fail",
                f"'{source.list_title}' on {source.site}: {exc}",
                _graph_fix(exc, source.site, source.list_title),
            )
        ]
    checks = [Check(name, "pass", f"'{source.list_title}' on {source.site} is reachable")]
    problems = check_field_map(flow, columns, check_indexes=True)
    columns_wrong = [p for p in problems if p.kind in ("missing", "type")]
    unindexed = [p for p in problems if p.kind == "index"]
    mapped = len(source.fields) + len(source.filter)
    checks.append(
        _fieldmap_check(
            f"register columns ({flow.id})",
            flow,
            columns_wrong,
            f"all {mapped} mapped, filter and approver column(s) there, of readable types",
        )
    )
    checks.append(
        _fieldmap_check(
            f"register indexes ({flow.id})", flow, unindexed, _index_summary(flow, columns)
        )
    )
    return checks


def _index_summary(flow: Flow, columns: Sequence[RegisterColumn]) -> str:
    """Which filter columns SharePoint filters on (indexed) and which m365perf applies."""
    by_name = {c.name: c for c in columns}
    server = [n for n, v in flow.source.filter.items() if not applied_locally(v)]
    local = [n for n, v in flow.source.filter.items() if applied_locally(v)]
    if not server and not local:
        return "the flow filters on no column"
    parts = []
    if server:
        indexed = [n for n in server if by_name.get(n) is None or by_name[n].indexed is not False]
        parts.append(f"indexed: {', '.join(indexed)} (SharePoint filters on them)")
    if local:
        parts.append(f"applied by m365perf after reading, so no index needed: {', '.join(local)}")
    return "; ".join(parts)


def _not_checked(names: Sequence[str], token: str) -> list[Check]:
    """The checks a refused token leaves undone, listed so every run has the same set."""
    return [
        Check(
            name,
            "not checked",
            f"not checked (needs a {token} token)",
            f"fix the {token} token first (see its check above)",
        )
        for name in names
    ]


def _graph_check_names(flow: Flow) -> list[str]:
    return [
        f"register ({flow.id})",
        f"register columns ({flow.id})",
        f"register indexes ({flow.id})",
        f"results list ({flow.id})",
        f"results columns ({flow.id})",
    ]


def _fieldmap_check(
    name: str, flow: Flow, problems: Sequence[FieldMapProblem], passed: str
) -> Check:
    if not problems:
        return Check(name, "pass", passed)
    details = [line for line in problem_lines(flow, problems) if not line.startswith("  ")]
    fixes = dict.fromkeys(p.fix for p in problems if p.fix)
    return Check(name, "fail", "; ".join(details), "; ".join(fixes))


def results_checks(m365: M365, flow: Flow) -> list[Check]:
    """The results list has the columns write-back fills and the indexes it looks up by."""
    spec = results_list(flow)
    name = f"results list ({flow.id})"
    try:
        site_id, list_id = _list_id(m365, spec.site, spec.title)
        have = {c.name: c for c in m365.graph.list_columns(site_id, list_id)}
    except M365Error as exc:
        fix = _graph_fix(exc, spec.site, spec.title)
        if isinstance(exc, NotFound):
            fix = f"create it with `m365perf provision {flow.id}`, or " + fix
        return [Check(name, "fail", f"'{spec.title}' on {spec.site}: {exc}", fix)]
    checks = [Check(name, "pass", f"'{spec.title}' on {spec.site} is reachable")]
    missing = [c.name for c in spec.columns if c.name not in have and c.name not in BUILTIN_COLUMNS]
    wrong = [
        f"{c.name} is {have[c.name].type}, not {c.type}"
        for c in spec.columns
        if c.name in have and c.type != ANY_TYPE and have[c.name].type not in ("", c.type)
    ]
    unindexed = [
        c.name for c in spec.columns if c.indexed and c.name in have and not have[c.name].indexed
    ]
    problems = (
        ([f"missing column(s): {', '.join(missing)}"] if missing else [])
        + ([f"wrong type: {'; '.join(wrong)}"] if wrong else [])
        + (
            [f"not indexed (write-back filters on them): {', '.join(unindexed)}"]
            if unindexed
            else []
        )
    )
    if problems:
        checks.append(
            Check(
                f"results columns ({flow.id})",
                "fail",
                "; ".join(problems),
                f"run `m365perf provision {flow.id}` (adds missing columns and indexes)",
            )
        )
    else:
        checks.append(
            Check(
                f"results columns ({flow.id})",
                "pass",
                f"all {len(spec.columns)} write-back column(s) there; "
                f"{', '.join(spec.indexed)} indexed",
            )
        )
    return checks


# --------------------------------------------------------------------------- mail


def mailbox_check(settings: Settings, m365: M365, graph_token: str | None) -> Check:
    """The service mailbox can be read; Mail.Send must not be consented tenant-wide.

    docs/deploy.md grants Mail.Send by RBAC for Applications, scoped to the service
    mailbox; such grants never appear in the token's ``roles``, so only a tenant-wide
    (Entra) Mail.Send can be seen here, and it is the one the docs forbid.
    """
    name = "service mailbox"
    mailbox = settings.service_mailbox
    if not mailbox:
        return Check(
            name,
            "fail",
            "M365PERF_SERVICE_MAILBOX is not set",
            "set it to the mailbox requests are sent from, e.g. performance@council.gov.uk",
        )
    try:
        user = m365.graph.get_user(mailbox)
    except NotFound:
        return Check(
            name,
            "fail",
            f"no user or mailbox {mailbox} in the directory",
            "check M365PERF_SERVICE_MAILBOX; it must be a user mailbox (not a group)",
        )
    except M365Error as exc:
        return Check(
            name,
            "fail",
            f"cannot read {mailbox}: {exc}",
            "grant the app User.Read.All so it can look the mailbox up",
        )
    address = user.mail or mailbox
    roles = (token_claims(graph_token).get("roles") or []) if graph_token else []
    if "Mail.Send" in roles:
        return Check(
            name,
            "warn",
            f"{address} is reachable, but Mail.Send is consented tenant-wide: the app can "
            "send as any mailbox in the organisation",
            "remove the Microsoft Graph application permission Mail.Send (and revoke its "
            "consent) in Entra ID, and use RBAC for Applications scoped to this mailbox "
            "(docs/deploy.md section 4)",
        )
    return Check(
        name,
        "pass",
        f"{address} is reachable; RBAC scope cannot be proven without sending — run "
        f"Test-ServicePrincipalAuthorization -Identity {settings.client_id} -Resource "
        f"{address} in Exchange Online PowerShell (RBAC for Applications grants do not "
        "show in the token)",
    )


# --------------------------------------------------------------------------- bot


def bot_check(settings: Settings, session: requests.Session) -> Check:
    """The bot endpoint answers at the public URL and refuses an unsigned activity (401)."""
    name = "bot endpoint"
    if not settings.bot_app_id:
        return Check(
            name,
            "fail",
            "M365PERF_BOT_APP_ID is not set",
            "set it to the Microsoft App ID of the Azure Bot",
        )
    if not settings.public_base_url:
        return Check(
            name,
            "fail",
            "M365PERF_PUBLIC_BASE_URL is not set",
            "set it to the https address the Azure Bot's messaging endpoint points at",
        )
    url = settings.public_base_url.rstrip("/") + "/api/messages"
    activity = {
        "type": "message",
        "id": "m365perf-doctor",
        "recipient": {"id": f"28:{settings.bot_app_id}"},
        "text": "doctor",
    }
    try:
        answer = session.post(url, json=activity, timeout=(settings.connect_timeout_s, 15))
    except requests.RequestException as exc:
        return Check(
            name,
            "fail",
            f"{url} did not answer: {type(exc).__name__}",
            "start `m365perf serve` there, or correct M365PERF_PUBLIC_BASE_URL "
            "(and the proxy or firewall in front of it)",
        )
    if answer.status_code == 401:
        return Check(
            name,
            "pass",
            f"{url} answers and refuses an unsigned activity (401); bot app id "
            f"{settings.bot_app_id}. Not proven: that the Azure Bot's messaging endpoint "
            "is this URL (Azure portal → the bot → Configuration)",
        )
    if answer.status_code == 404:
        fix = "M365PERF_PUBLIC_BASE_URL reaches something that is not m365perf; correct it"
    elif answer.status_code < 300:
        fix = "the endpoint accepted an unsigned activity: check what answers there"
    else:
        fix = "check the service's log; `m365perf serve` must answer there"
    return Check(name, "fail", f"{url} answered {answer.status_code}, not 401", fix)


# --------------------------------------------------------------------------- Power BI


def _placeholder(value: str) -> bool:
    digits = value.replace("-", "")
    return not _GUID.match(value) or len(set(digits)) == 1


def powerbi_checks(m365: M365, flow: Flow, *, now: datetime) -> list[Check]:
    """The dataset is reachable and today's refreshes, scheduled ones included, are known."""
    if flow.powerbi is None:
        return []
    name = f"Power BI dataset ({flow.id})"
    pbi = flow.powerbi
    for what, value in (("workspace", pbi.workspace), ("dataset", pbi.dataset)):
        if _placeholder(value):
            return [
                Check(
                    name,
                    "fail",
                    f"powerbi.{what} '{value}' is a placeholder, not an id",
                    f"put the real {what} id in {flow.file or flow.id} (from the dataset's "
                    "URL in Power BI: /groups/<workspace>/datasets/<dataset>)",
                )
            ]
    try:
        history = m365.powerbi.refresh_history(pbi.workspace, pbi.dataset)
    except NotFound:
        return [
            Check(
                name,
                "fail",
                f"dataset {pbi.dataset} not found in workspace {pbi.workspace}",
                f"check powerbi.workspace and powerbi.dataset in {flow.file or flow.id}, "
                "and that the app is a member of the workspace",
            )
        ]
    except Unauthorized as exc:
        return [
            Check(
                name,
                "fail",
                f"Power BI refused the app: {exc}",
                "let the app's service principal use Power BI APIs (Fabric admin portal "
                "→ Tenant settings → Service principals can call Fabric public APIs, for "
                "a security group holding the app) and add it to the workspace as Member",
            )
        ]
    except M365Error as exc:
        return [
            Check(
                name,
                "fail",
                f"cannot read the refresh history: {exc}",
                "try again; then check the Power BI service status",
            )
        ]
    today = now.astimezone(LONDON).date()
    kinds: Counter[str] = Counter()
    scheduled_by_day: Counter[Any] = Counter()
    for refresh in history:
        if not refresh.start_time:
            continue
        try:
            started = datetime.fromisoformat(refresh.start_time.replace("Z", "+00:00"))
        except ValueError:
            continue
        day = started.astimezone(LONDON).date()
        if refresh.refresh_type == "Scheduled":
            scheduled_by_day[day] += 1
        if day == today:
            kinds[refresh.refresh_type or "Unknown"] += 1
    total = sum(kinds.values())
    shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none"
    checks = [
        Check(
            name,
            "pass",
            f"reachable; {total} refresh(es) today ({shown}) of a daily budget of "
            f"{pbi.daily_budget}",
        )
    ]
    most = max(scheduled_by_day.values(), default=0)
    if most > pbi.scheduled_refreshes_per_day:
        checks.append(
            Check(
                f"Power BI schedule ({flow.id})",
                "fail",
                f"Power BI ran {most} scheduled refresh(es) in a day, but the flow counts "
                f"{pbi.scheduled_refreshes_per_day}; they share the 8-a-day limit",
                f"set powerbi.scheduled_refreshes_per_day: {most} in {flow.file or flow.id}",
            )
        )
    elif total >= pbi.daily_budget:
        checks.append(
            Check(
                f"Power BI schedule ({flow.id})",
                "warn",
                f"today's {total} refresh(es) use the whole daily budget",
                "refreshes after approvals wait for tomorrow; fewer scheduled ones help",
            )
        )
    return checks


# --------------------------------------------------------------------------- all


def run_doctor(
    settings: Settings,
    flows_dir: Path,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Report:
    """Every check, in the order a fix is best made: settings, tokens, lists, mail, bot, BI."""
    flows, flows_check = load_flows(flows_dir)
    checks: list[Check] = []
    if not settings.has_tenant:
        checks.append(
            Check(
                "tenant settings",
                "fail",
                "no tenant is configured",
                "set M365PERF_TENANT_ID, M365PERF_CLIENT_ID and a secret or "
                "certificate (config/.env.example says where each comes from)",
            )
        )
        return Report((flows_check, *checks))
    session = new_session(settings.user_agent)
    try:
        try:
            tokens = tokens_from_settings(settings, session)
        except ValueError as exc:
            checks.append(
                Check(
                    "tenant settings",
                    "fail",
                    str(exc),
                    "fix the M365PERF_* settings (config/.env.example)",
                )
            )
            return Report((flows_check, *checks))
        token_results, issued = token_checks(settings, tokens)
        checks += token_results
        m365 = clients_from_settings(settings, tokens=tokens, session=session)
        if "graph" in issued:
            for flow in flows:
                checks += register_checks(m365, flow)
                checks += results_checks(m365, flow)
            checks.append(mailbox_check(settings, m365, issued.get("graph")))
        else:
            for flow in flows:
                checks += _not_checked(_graph_check_names(flow), "Graph")
            checks += _not_checked(["service mailbox"], "Graph")
        checks.append(bot_check(settings, session))
        for flow in flows:
            if "powerbi" in issued:
                checks += powerbi_checks(m365, flow, now=now())
            elif flow.powerbi is not None:
                checks += _not_checked([f"Power BI dataset ({flow.id})"], "Power BI")
        checks.append(flows_check)
    finally:
        session.close()
    return Report(tuple(checks))
