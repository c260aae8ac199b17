"""A council to rehearse with: Coventry's real indicators, made-up people, a tenant skeleton.

Indicator names, units, polarities, targets and past values are Coventry City
Council's published Council Plan tables (Open Government Licence; attribute
"Coventry City Council"), kept as messy as published: blank targets, "N/A",
polarity unknown. Owners and approvers are invented, with Entra-style GUIDs derived
from a seed so every run (and every test) sees the same directory.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from m365perf.domain.kinds import Frequency, Polarity, Unit
from m365perf.flows.results import (
    ACTION_COLUMNS,
    ACTION_KEY,
    HISTORY_KEY,
    RESULT_COLUMNS,
    ResultColumn,
)
from m365perf.flows.results import HISTORY_COLUMNS as HISTORY_COLUMN_SPECS
from m365perf.sandbox.core import Sandbox
from m365perf.sandbox.signin import put_group
from m365perf.sandbox.store import Column, ListRow, SiteRow, UserRow
from m365perf.sandbox.teams import teams_user_id

COVENTRY_DIR = Path(__file__).parent / "data"
REGISTER_CSV = "coventry_2024-25_register.csv"
VALUES_CSV = "coventry_2024-25_values_long.csv"
SEEDED_AT = "2025-04-01T08:00:00Z"
DEFAULT_SEED = 2025

REGISTER_LIST = "KPI Register"
RESULTS_LIST = "KPI Results"
HISTORY_LIST = "KPI History"
ACTIONS_LIST = "KPI Actions"
WORKSPACE_NAME = "Performance"
DATASET_NAME = "KPI Dashboard"

REGISTER_COLUMNS: tuple[Column, ...] = (
    Column("IndicatorId", "text", indexed=True),
    Column("Unit"),
    Column("Polarity"),
    Column("Frequency", "text", indexed=True),
    Column("Target"),
    Column("Tolerance", "number"),
    Column("TargetFrom"),
    Column("Comparator"),
    Column("Owner"),
    Column("Supervisor"),
    Column("HeadOfService"),
    Column("Service"),
    Column("Kind"),
    Column("Profile"),
    Column("Active", "boolean", indexed=True),
)
REGISTER_FIELDS = ("IndicatorId", "Title", *(c.name for c in REGISTER_COLUMNS[1:]))
"""The register's columns in CSV order; the same names as the SharePoint list's."""


def _columns(fields: Iterable[ResultColumn], key: Iterable[str]) -> tuple[Column, ...]:
    """A list as ``m365perf provision`` makes it: key columns indexed, Title left to SharePoint."""
    keys = set(key)
    return tuple(
        Column(
            f.name, f.kind, indexed=f.name in keys, required=f.name in keys, multiline=f.multiline
        )
        for f in fields
        if f.name != "Title"
    )


RESULTS_COLUMNS: tuple[Column, ...] = _columns(
    (ResultColumn("IndicatorId"), ResultColumn("Period"), *RESULT_COLUMNS),
    ("IndicatorId", "Period"),
)
"""The results list the example flows write back to, keyed on (IndicatorId, Period)."""

HISTORY_COLUMNS: tuple[Column, ...] = _columns(HISTORY_COLUMN_SPECS, HISTORY_KEY)

ACTIONS_COLUMNS: tuple[Column, ...] = _columns(ACTION_COLUMNS, (ACTION_KEY,))
"""The improvement actions list a flow with ``actions: {list: KPI Actions}`` writes to."""


def stable_guid(seed: int, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://m365perf.invalid/seed/{seed}/{name}"))


# the directory


@dataclass(frozen=True)
class Service:
    name: str
    keywords: tuple[str, ...]
    head: tuple[str, str]
    manager: tuple[str, str]
    officers: tuple[tuple[str, str], tuple[str, str]]


SERVICES: tuple[Service, ...] = (
    Service(
        "Finance and Corporate Services",
        (
            "collection",
            "council tax",
            "budget",
            "financial",
            "savings",
            "headcount",
            "sickness",
            "agency",
            "staff survey",
            "workforce",
            "transactions",
            "telephone",
            "problem resolution",
            "investment income",
            "rateable",
        ),
        ("Priya", "Sharma"),
        ("Gareth", "Lloyd"),
        (("Hannah", "Price"), ("Tom", "Whitfield")),
    ),
    Service(
        "Children and Education",
        (
            "key stage",
            "pupil",
            "school",
            "neet",
            "development at age 5",
            "looked after",
            "children's social care",
            "early help",
            "exclusions",
            "youth justice",
            "leavers",
        ),
        ("Margaret", "Okafor"),
        ("Daniel", "Hughes"),
        (("Aisha", "Begum"), ("Liam", "Fletcher")),
    ),
    Service(
        "Adults and Health",
        (
            "adult",
            "social care",
            "carers",
            "safeguarding",
            "life expectancy",
            "obesity",
            "smoking",
            "physical activity",
            "hospital",
            "diabetes",
            "hiv",
            "conceptions",
            "breastfeeding",
            "care support",
            "reablement",
        ),
        ("Stephen", "Marsh"),
        ("Fiona", "Campbell"),
        (("Raj", "Patel"), ("Emma", "Doyle")),
    ),
    Service(
        "Housing and Communities",
        (
            "homeless",
            "crime",
            "domestic abuse",
            "domestic violence",
            "hatred",
            "drug",
            "deprived",
            "low-income",
            "enforcement",
        ),
        ("Angela", "Reid"),
        ("Marcus", "Bennett"),
        (("Chloe", "Evans"), ("Yusuf", "Ali")),
    ),
    Service(
        "Climate, Highways and Streetscene",
        (
            "carbon",
            "renewable",
            "air quality",
            "cdp",
            "trips into",
            "road",
            "electric vehicle",
            "pavement",
            "vehicles",
            "waste",
            "biodiversity",
            "green",
            "environmental",
            "cleanliness",
            "fly-tip",
            "nht",
            "planning",
        ),
        ("Robert", "Kaur"),
        ("Sian", "Roberts"),
        (("Owen", "Walsh"), ("Grace", "Mensah")),
    ),
    Service(
        "Economy and Regeneration",
        (
            "gross domestic",
            "footfall",
            "visitor",
            "employment",
            "job shop",
            "apprenticeship",
            "enterprises",
            "business rates",
            "qualified",
            "pay",
            "disposable",
            "fibre",
            "digital",
            "properties",
        ),
        ("Helen", "Baxter"),
        ("Imran", "Hussain"),
        (("Zoe", "Turner"), ("Kieran", "Murphy")),
    ),
)
CHIEF_EXECUTIVE = ("Julia", "Ashworth")
PERFORMANCE_TEAM = (("Nadia", "Clarke"), ("Ben", "Foster"))


def _upn(first: str, last: str, domain: str) -> str:
    return f"{first}.{last}@{domain}".lower()


def directory(mail_domain: str, bot_app_id: str, seed: int = DEFAULT_SEED) -> list[UserRow]:
    """About thirty people: a chief executive, six services, a performance team, the mailbox."""
    users: list[UserRow] = []

    def add(first: str, last: str, title: str, department: str, manager: str | None) -> str:
        upn = _upn(first, last, mail_domain)
        oid = stable_guid(seed, upn)
        users.append(
            UserRow(
                id=oid,
                upn=upn,
                mail=upn,
                display_name=f"{first} {last}",
                given_name=first,
                surname=last,
                job_title=title,
                department=department,
                office="Council House",
                manager_id=manager,
                teams_id=teams_user_id(bot_app_id, oid),
            )
        )
        return oid

    chief = add(*CHIEF_EXECUTIVE, "Chief Executive", "Chief Executive's Office", None)
    lead = add(*PERFORMANCE_TEAM[0], "Performance Manager", "Insight and Performance", chief)
    add(*PERFORMANCE_TEAM[1], "Performance Analyst", "Insight and Performance", lead)
    for service in SERVICES:
        head = add(*service.head, "Head of Service", service.name, chief)
        manager = add(*service.manager, "Service Manager", service.name, head)
        for first, last in service.officers:
            add(first, last, "Performance Officer", service.name, manager)
    mailbox = f"performance@{mail_domain}"
    oid = stable_guid(seed, mailbox)
    users.append(
        UserRow(
            oid,
            mailbox,
            mailbox,
            "Performance Team",
            "Performance",
            "Team",
            "",
            "Insight and Performance",
            "Council House",
            None,
            teams_user_id(bot_app_id, oid),
        )
    )
    return users


# the register


def _read_csv(name: str) -> list[dict[str, str]]:
    with (COVENTRY_DIR / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _service_for(metric: str, row_id: int) -> Service:
    text = metric.lower()
    for service in SERVICES:
        if any(word in text for word in service.keywords):
            return service
    return SERVICES[row_id % len(SERVICES)]


_UNITS = {
    "%": Unit.PERCENTAGE,
    "% difference": Unit.PERCENTAGE,
    "number": Unit.COUNT,
    "pounds": Unit.CURRENCY,
    "millions of pounds": Unit.CURRENCY,
    "days per full-time equivalent": Unit.DAYS,
}


def _unit(raw: str) -> str:
    """The shared vocabulary where Coventry's unit maps cleanly; otherwise Coventry's words."""
    key = raw.strip().lower()
    if key in _UNITS:
        return _UNITS[key].value
    if key.startswith("rate per"):
        return Unit.RATIO.value
    return raw


def _number(text: str) -> float | None:
    cleaned = text.strip().replace(",", "")
    match = re.fullmatch(r"[<>]?=?\s*(-?\d+(?:\.\d+)?)\s*%?\+?", cleaned)
    return float(match.group(1)) if match else None


def _value(text: str) -> float | None:
    """A published value as a number, or None for "23 out of 35", "B", "5.193m" and the like."""
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*%?", text.strip().replace(",", ""))
    return float(match.group(1)) if match else None


def _tolerance(target: str) -> float | None:
    """Invented: 5% of a numeric target; none where the target is words (most of them)."""
    value = _number(target)
    if value is None or value == 0:
        return None
    return round(abs(value) * 0.05, 2)


def _comparators(values: list[dict[str, str]]) -> dict[str, str]:
    latest: dict[str, tuple[str, str]] = {}
    for row in values:
        if row["series"] != "comparator" or not row["scope"].strip():
            continue
        current = latest.get(row["row_id"])
        if current is None or row["period"] >= current[0]:
            latest[row["row_id"]] = (row["period"], row["scope"].strip())
    return {k: v[1] for k, v in latest.items()}


def _owners(domain: str) -> dict[str, tuple[str, str, str, str]]:
    """Per service: (officer 1, officer 2, manager, head) e-mails."""
    result = {}
    for service in SERVICES:
        result[service.name] = (
            _upn(*service.officers[0], domain),
            _upn(*service.officers[1], domain),
            _upn(*service.manager, domain),
            _upn(*service.head, domain),
        )
    return result


def _frequency(headline: bool, row_id: int) -> Frequency:
    """Coventry reports yearly; for rehearsals a third of the headline measures are monthly."""
    if not headline:
        return Frequency.ANNUAL
    return Frequency.MONTHLY if row_id % 3 == 0 else Frequency.QUARTERLY


def register_rows(mail_domain: str = "contoso.gov.uk") -> list[dict[str, Any]]:
    """The KPI Register as rows keyed by :data:`REGISTER_FIELDS`, in Coventry's sort order."""
    raw = _read_csv(REGISTER_CSV)
    comparators = _comparators(_read_csv(VALUES_CSV))
    owners = _owners(mail_domain)
    counters: dict[str, int] = {}
    rows = []
    for entry in sorted(raw, key=lambda r: int(r["sort_order"] or r["row_id"])):
        row_id = int(entry["row_id"])
        service = _service_for(entry["metric"], row_id)
        officer_1, officer_2, manager, head = owners[service.name]
        turn = counters.get(service.name, 0)
        counters[service.name] = turn + 1
        polarity = entry["polarity_derived"]
        rows.append(
            {
                "IndicatorId": f"COV-{row_id:03d}",
                "Title": entry["metric"],
                "Unit": _unit(entry["unit"]),
                "Polarity": Polarity(polarity).value if polarity else "",
                "Frequency": _frequency(entry["headline_2022_30"] == "TRUE", row_id).value,
                "Target": entry["target"],
                "Tolerance": _tolerance(entry["target"]),
                "Comparator": comparators.get(entry["row_id"], ""),
                "Owner": officer_1 if turn % 2 == 0 else officer_2,
                "Supervisor": manager,
                "HeadOfService": head,
                "Service": service.name,
                # Every indicator Coventry has ever published is live in the rehearsal.
                "Active": bool(entry["latest_period"]),
            }
        )
    return rows


def write_register_csv(path: Path, mail_domain: str = "contoso.gov.uk") -> Path:
    """The same register as a CSV (for ``plan`` without a tenant); column names as the list's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REGISTER_FIELDS))
        writer.writeheader()
        for row in register_rows(mail_domain):
            writer.writerow(
                {
                    **row,
                    "Tolerance": "" if row["Tolerance"] is None else row["Tolerance"],
                    "Active": "true" if row["Active"] else "false",
                }
            )
    return path


def write_directory_csv(
    path: Path, mail_domain: str = "contoso.gov.uk", bot_app_id: str = "", seed: int = DEFAULT_SEED
) -> Path:
    """The seeded directory as a CSV (id, name, email, line_manager) for ``plan`` and rehearsals."""
    users = directory(mail_domain, bot_app_id, seed)
    by_id = {u.id: u for u in users}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "email", "line_manager"])
        for user in users:
            manager = by_id.get(user.manager_id or "")
            writer.writerow(
                [user.id, user.display_name, user.mail, manager.mail if manager else ""]
            )
    return path


def period_label(coventry_period: str) -> str:
    """``2019-20 end of year`` → ``2019/20``; ``2017-18 half year`` → ``2017/18 H1``."""
    match = re.fullmatch(r"(\d{4})-(\d{2}) (end of year|half year)", coventry_period.strip())
    if match is None:
        return coventry_period
    label = f"{match.group(1)}/{match.group(2)}"
    return label if match.group(3) == "end of year" else f"{label} H1"


def history_rows() -> list[dict[str, Any]]:
    """Past values (Coventry, its comparator and England) keyed like the KPI History list."""
    rows = []
    for entry in _read_csv(VALUES_CSV):
        rows.append(
            {
                "Title": f"COV-{int(entry['row_id']):03d} {period_label(entry['period'])}",
                "IndicatorId": f"COV-{int(entry['row_id']):03d}",
                "Period": period_label(entry["period"]),
                "Series": entry["series"],
                "Value": _value(entry["value"]),
                "ValueText": entry["value"],
                "Scope": entry["scope"],
                "DataDate": entry["data_date"],
            }
        )
    return rows


# loading it into a sandbox


def _list(
    sandbox: Sandbox, seed: int, site_id: str, name: str, columns: Iterable[Column]
) -> ListRow:
    list_id = stable_guid(seed, f"list/{name}")
    existing = sandbox.store.list_(site_id, list_id)
    if existing is not None:
        return existing
    cols = [replace(c, id=stable_guid(seed, f"column/{name}/{c.name}")) for c in columns]
    lst = ListRow(list_id, site_id, name, cols, SEEDED_AT, SEEDED_AT)
    sandbox.store.put_list(lst)
    return lst


def _fill(sandbox: Sandbox, seed: int, lst: ListRow, rows: list[dict[str, Any]]) -> None:
    for number, row in enumerate(rows, start=1):
        fields = {k: v for k, v in row.items() if v is not None and v != ""}
        item = sandbox.store.new_item(
            lst.id, fields, stable_guid(seed, f"item/{lst.id}/{number}").upper(), SEEDED_AT
        )
        assert item.id == number


def site_id(sandbox: Sandbox, seed: int = DEFAULT_SEED) -> str:
    config = sandbox.config
    return ",".join(
        (
            config.sharepoint_host,
            stable_guid(seed, f"site/{config.site_path}"),
            stable_guid(seed, f"web/{config.site_path}"),
        )
    )


def performance_team_group(seed: int = DEFAULT_SEED) -> str:
    """The Entra group of the performance team: what a flow's ``staff_group`` names."""
    return stable_guid(seed, "group/performance-team")


def workspace_and_dataset(seed: int = DEFAULT_SEED) -> tuple[str, str]:
    return stable_guid(seed, "powerbi/workspace"), stable_guid(seed, "powerbi/dataset")


def ensure_skeleton(sandbox: Sandbox, seed: int = DEFAULT_SEED) -> None:
    """What any tenant has before m365perf arrives: the site, the service mailbox, the dataset."""
    store, config = sandbox.store, sandbox.config
    with store.transaction():
        if store.site(site_id(sandbox, seed)) is None:
            store.put_site(
                SiteRow(
                    site_id(sandbox, seed),
                    config.sharepoint_host,
                    config.site_path,
                    "Performance",
                    SEEDED_AT,
                )
            )
        mailbox = f"performance@{config.mail_domain}"
        if store.user(mailbox) is None:
            everyone = directory(config.mail_domain, config.bot_app_id, seed)
            store.put_user(next(u for u in everyone if u.upn == mailbox))
        workspace, dataset = workspace_and_dataset(seed)
        store.put_dataset(workspace, dataset, DATASET_NAME)


def seed_sandbox(sandbox: Sandbox, seed: int = DEFAULT_SEED) -> bool:
    """Load the demo council once; False when this data dir was seeded before (state is kept)."""
    ensure_skeleton(sandbox, seed)
    store, config = sandbox.store, sandbox.config
    if store.get_meta("seeded") is not None:
        return False
    site = site_id(sandbox, seed)
    with store.transaction():
        for user in directory(config.mail_domain, config.bot_app_id, seed):
            store.put_user(user)
        register = _list(sandbox, seed, site, REGISTER_LIST, REGISTER_COLUMNS)
        _fill(sandbox, seed, register, register_rows(config.mail_domain))
        _list(sandbox, seed, site, RESULTS_LIST, RESULTS_COLUMNS)
        history = _list(sandbox, seed, site, HISTORY_LIST, HISTORY_COLUMNS)
        _fill(sandbox, seed, history, history_rows())
        _list(sandbox, seed, site, ACTIONS_LIST, ACTIONS_COLUMNS)
        team = [_upn(*person, config.mail_domain) for person in PERFORMANCE_TEAM]
        put_group(sandbox, performance_team_group(seed), "Performance team", team)
        store.set_meta("seeded", str(seed))
    return True


def describe(sandbox: Sandbox, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The ids a service needs to find the seeded things (shown by health and the CLI)."""
    workspace, dataset = workspace_and_dataset(seed)
    return {
        "site_id": site_id(sandbox, seed),
        "site_url": f"https://{sandbox.config.sharepoint_host}{sandbox.config.site_path}",
        "lists": {lst.display_name: lst.id for lst in sandbox.store.lists(site_id(sandbox, seed))},
        "powerbi_workspace_id": workspace,
        "powerbi_dataset_id": dataset,
        "service_mailbox": f"performance@{sandbox.config.mail_domain}",
        "performance_team_group_id": performance_team_group(seed),
        "seeded": sandbox.store.get_meta("seeded") is not None,
    }
