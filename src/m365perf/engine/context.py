"""What every engine step needs to know besides the store: flows and service settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from m365perf.domain.periods import Period
from m365perf.flows.model import Flow
from m365perf.messages import ReturnForm
from m365perf.store import Cycle

LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class Caller:
    """Who clicked: the verified token's user (Entra object id) and display name."""

    user_id: str
    name: str


class ReturnLinkSigner(Protocol):
    """Makes the signed token of an owner's web-form link (``m365perf.web.links``).

    The engine never signs: a signed link is a live credential, so what it queues names
    the form (:class:`~m365perf.messages.ReturnForm`) and the dispatcher signs at send
    time; the web layer, which holds the same key, checks them. The engine only asks
    whether links are on.
    """

    def sign_return(self, cycle_id: int, owner_id: str, *, now: datetime) -> str: ...


@dataclass(frozen=True)
class EngineConfig:
    """Service settings the engine puts into what it sends.

    Without ``return_links`` no web-form link goes out: a link nobody can verify would
    only lead to an error page.
    """

    public_base_url: str = "http://127.0.0.1:8080"
    service_mailbox: str = "performance@contoso.gov.uk"
    max_card_bytes: int = 28_000
    return_links: ReturnLinkSigner | None = None
    approvals_base_url: str | None = None
    """Where approvers sign in to decide on the web; None when web sign-in is off."""


@dataclass
class EngineContext:
    """The flows the engine runs and its configuration."""

    flows: Mapping[str, Flow]
    config: EngineConfig = field(default_factory=EngineConfig)

    def flow(self, flow_id: str) -> Flow:
        try:
            return self.flows[flow_id]
        except KeyError:
            raise LookupError(f"no flow '{flow_id}' is loaded") from None

    def period_of(self, cycle: Cycle) -> Period:
        return Period.parse_for(self.flow(cycle.flow_id).frequency, cycle.period)

    def link(self, path: str) -> str:
        return self.config.public_base_url.rstrip("/") + path

    def approvals_link(self, cycle_id: int) -> str | None:
        """The approver's signed-in web page for a cycle; None when web sign-in is off."""
        base = self.config.approvals_base_url
        return f"{base.rstrip('/')}/approvals/{cycle_id}" if base else None

    def return_form(self, cycle_id: int, owner_id: str) -> ReturnForm | None:
        """The owner's web form for their returns in this cycle (signed when the e-mail
        is sent); None when links are off."""
        if self.config.return_links is None:
            return None
        return ReturnForm(cycle_id=cycle_id, owner_id=owner_id)


def at_local(day: date, clock: time) -> datetime:
    """A London wall-clock time on a day, as an aware datetime."""
    return datetime.combine(day, clock, tzinfo=LONDON)


def local_day(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()
