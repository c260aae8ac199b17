"""The outbox contract: one model per kind of message, and the outcome of sending it.

The engine builds a message, stores ``payload()`` under its ``kind`` and ``budget``; the
dispatcher reads the row back with :func:`parse_message`, sends it and reports the
outcome model of that kind to the engine's ``on_sent``. The payload keys are the ones
rows have always been stored with, so rows queued before these models read back.
``docs/outbox.md`` is generated from this module (``python -m m365perf.messages.doc``).
"""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from m365perf.errors import M365PerfError
from m365perf.messages.ids import CardId
from m365perf.messages.names import OutboxKind, SubjectType

Channel = Literal["teams", "email"]


def card_fingerprint(card: Mapping[str, Any]) -> str:
    """A short hash of what a card shows, to tell an update that changes nothing.

    Canonical JSON (sorted keys), so two renderings of the same card agree however
    their dicts were built.
    """
    text = json.dumps(card, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def mailbox_budget(mailbox: str) -> str:
    """The budget of everything sent from ``mailbox`` (Exchange limits each mailbox)."""
    return f"mailbox:{mailbox.lower()}"


def split_site(site: str) -> tuple[str, str]:
    """A SharePoint site as ``host:/path``, split; ``ValueError`` if it is not one."""
    host, sep, path = site.partition(":")
    if not sep or not host or "/" in host or not path.startswith("/"):
        raise ValueError(f"{site!r} is not a site written 'host:/sites/name'")
    return host, path


def _card_id(value: object) -> CardId:
    if isinstance(value, CardId):
        return value
    if isinstance(value, str):
        return CardId.parse(value)
    raise ValueError(f"a card id is text, not {type(value).__name__}")


CardIdText = Annotated[
    CardId,
    PlainValidator(_card_id),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "format": "card id"}),
]
"""A card id, stored as its text (see ``m365perf.messages.ids``)."""


def _adaptive_card(card: dict[str, Any]) -> dict[str, Any]:
    if card.get("type") != "AdaptiveCard":
        raise ValueError(f"not an Adaptive Card (its type is {card.get('type')!r})")
    return card


AdaptiveCard = Annotated[dict[str, Any], AfterValidator(_adaptive_card)]
"""Adaptive Card JSON (its ``type`` is ``AdaptiveCard``)."""


def _column_name(name: str) -> bool:
    """A SharePoint internal column name: letters, digits, underscores; no leading digit.

    Key columns go into an OData ``$filter``, so nothing else may pass.
    """
    return (
        bool(name)
        and name.isascii()
        and (name[0].isalpha() or name[0] == "_")
        and all(c.isalnum() or c == "_" for c in name)
    )


# --- outcomes: what the dispatcher reports to on_sent ---------------------------------


class _Outcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class CardSent(_Outcome):
    """Where the card went, so the engine can replace it later."""

    conversation_id: str | None = None
    """The Teams 1:1 chat with the bot (opened by the dispatcher if there was none)."""
    activity_id: str | None = None
    """The Teams message holding the card."""
    service_url: str | None = None
    """The Bot Connector endpoint of that chat."""
    message_id: str | None = None
    """The e-mail's id (None: Graph's sendMail does not say)."""


class CardUpdated(_Outcome):
    """Whether the card was replaced."""

    replaced: bool
    """False for a card that went by e-mail, which cannot be replaced after the fact."""


class MailSent(_Outcome):
    """Nothing to report: Graph accepted the e-mail."""


class WrittenBack(_Outcome):
    """The results-list item the row now lives in."""

    item_id: str
    """The SharePoint list item."""
    created: bool
    """True when this send created the item, False when it updated one."""
    skipped_older: bool = False
    """True when the item already held a higher `Version` and was left alone."""


class RefreshStarted(_Outcome):
    """Power BI took the refresh request."""

    request_id: str
    """What the engine polls the refresh with."""


class RefreshChecked(_Outcome):
    """Where a refresh has got to."""

    status: str
    """`Unknown` (also while not listed yet), `NotStarted`, `InProgress`, `Completed`,
    `Failed`, `Cancelled` or `Disabled`."""
    error: str | None = None
    """Power BI's `serviceExceptionJson` for a refresh that failed."""

    @property
    def running(self) -> bool:
        """Not finished yet: look again later."""
        return self.status in ("Unknown", "NotStarted", "InProgress")


Outcome = CardSent | CardUpdated | MailSent | WrittenBack | RefreshStarted | RefreshChecked
"""Any outcome ``on_sent`` may be told about."""


# --- messages: what the engine queues -------------------------------------------------


class _Message(BaseModel):
    """An outbox message body; ``kind`` is stored in its own column, not in the payload."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
    )

    BUDGET: ClassVar[str]
    """How the budget is chosen, in words (for docs/outbox.md)."""
    OUTCOME: ClassVar[type[_Outcome]]
    """The outcome model the dispatcher reports for this kind."""

    @abstractmethod
    def budget(self, mailbox: str) -> str:
        """The rate budget the row is sent under; ``mailbox`` is the service mailbox."""

    def payload(self) -> dict[str, Any]:
        """The row's payload as stored (JSON; the kind is left out)."""
        return self.model_dump(mode="json", exclude={"kind"})


class CardUser(BaseModel):
    """The person a card is for."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    id: str = Field(min_length=1)
    """Entra object id (or the e-mail address of someone not in the directory)."""
    name: str
    email: str = Field(min_length=1)


RETURNS_PATH = "/returns/"
"""Where the owners' web form lives; a URL under it carries a signed, live credential."""


class ReturnForm(BaseModel):
    """Whose web form a card's e-mail links to: enough to sign the link, not the link.

    A signed link is a 30-day credential, so it is never stored: the dispatcher signs
    it when it sends the e-mail (``m365perf.web.links``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    cycle_id: int = Field(ge=1)
    """The cycle the link opens."""
    owner_id: str = Field(min_length=1)
    """The owner whose returns it opens (Entra object id)."""


class SendCard(_Message):
    """Deliver a card to one person in Teams, or as an actionable e-mail."""

    BUDGET: ClassVar[str] = "`bot` (teams) or `mailbox:{service mailbox}` (email)"
    OUTCOME: ClassVar[type[_Outcome]] = CardSent

    kind: Literal[OutboxKind.SEND_CARD] = OutboxKind.SEND_CARD
    card_id: CardIdText
    """One card for one person (`request-…`, `approval-…`, `rejection-…`, `…-mail`)."""
    channel: Channel
    """How the card goes."""
    user: CardUser
    """Who the card is for."""
    card: AdaptiveCard
    """The Adaptive Card JSON."""
    subject: str
    """The e-mail subject (e-mail channel)."""
    summary: str = ""
    """Plain text: the Teams notification, the body of the e-mail."""
    link: str = ""
    """URL of a page that needs sign-in (the approvals page), or empty; never a signed link."""
    return_form: ReturnForm | None = None
    """The owner's web form, linked from the e-mail with a link signed at send time."""
    subject_type: SubjectType
    """What the card is about, for the delivery record."""
    subject_id: int
    """Which cycle, return or step."""
    fallback_email: bool = False
    """Send the card by e-mail instead if Teams cannot deliver it."""

    @field_validator("link")
    @classmethod
    def _no_signed_link(cls, link: str) -> str:
        if RETURNS_PATH in link:
            raise ValueError("a signed web-form link is never stored: name its return_form")
        return link

    @model_validator(mode="after")
    def _email_needs_subject(self) -> SendCard:
        if self.channel == "email" and not self.subject:
            raise ValueError("an e-mailed card needs a subject")
        return self

    def budget(self, mailbox: str) -> str:
        return "bot" if self.channel == "teams" else mailbox_budget(mailbox)


class UpdateCard(_Message):
    """Replace a card already delivered in Teams (an e-mailed card stays as it is)."""

    BUDGET: ClassVar[str] = "`bot`"
    OUTCOME: ClassVar[type[_Outcome]] = CardUpdated

    kind: Literal[OutboxKind.UPDATE_CARD] = OutboxKind.UPDATE_CARD
    card_id: CardIdText
    """The card to replace, as its `send_card` named it."""
    card: AdaptiveCard
    """The Adaptive Card JSON that replaces it."""

    def budget(self, mailbox: str) -> str:
        return "bot"


class SendMail(_Message):
    """A plain e-mail from the service mailbox (digests, escalations, notices)."""

    BUDGET: ClassVar[str] = "`mailbox:{service mailbox}`"
    OUTCOME: ClassVar[type[_Outcome]] = MailSent

    kind: Literal[OutboxKind.SEND_MAIL] = OutboxKind.SEND_MAIL
    to: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """E-mail addresses."""
    cc: list[Annotated[str, Field(min_length=1)]] = []
    """E-mail addresses."""
    subject: str = Field(min_length=1)
    html: str = ""
    """The body."""
    text: str = ""
    """The body as plain text; sent (as paragraphs) only when `html` is empty."""

    @model_validator(mode="after")
    def _has_body(self) -> SendMail:
        if not self.html and not self.text:
            raise ValueError("an e-mail needs 'html' or 'text'")
        return self

    def budget(self, mailbox: str) -> str:
        return mailbox_budget(mailbox)


class WriteBack(_Message):
    """Upsert one approved figure into the SharePoint results list."""

    BUDGET: ClassVar[str] = "`sharepoint`"
    OUTCOME: ClassVar[type[_Outcome]] = WrittenBack

    kind: Literal[OutboxKind.WRITE_BACK] = OutboxKind.WRITE_BACK
    site: str
    """`host:/path` of the SharePoint site."""
    list_title: str = Field(alias="list", min_length=1)
    """The list's title."""
    key_fields: list[str] = Field(min_length=1)
    """Columns that identify the item, e.g. [`IndicatorId`, `Period`]."""
    fields: dict[str, Any] = Field(min_length=1)
    """Column → value; includes the key fields and `Version`."""
    return_id: int | None = None
    """The return written back (for the audit trail)."""
    cycle_id: int | None = None
    """That return's cycle (for the audit trail)."""

    @field_validator("site")
    @classmethod
    def _site(cls, site: str) -> str:
        split_site(site)
        return site

    @field_validator("key_fields")
    @classmethod
    def _key_fields(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not _column_name(n)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} is not a column name")
        return names

    @model_validator(mode="after")
    def _keys_present(self) -> WriteBack:
        missing = [k for k in self.key_fields if self.fields.get(k) in (None, "")]
        if missing:
            raise ValueError(f"'fields' lacks the key field(s) {', '.join(missing)}")
        return self

    @property
    def version(self) -> Any:
        """The ``Version`` column's value, as the engine wrote it (None without one)."""
        return self.fields.get("Version")

    def budget(self, mailbox: str) -> str:
        return "sharepoint"


class WriteAction(WriteBack):
    """Upsert one improvement action into the flow's SharePoint actions list.

    Sent exactly like a results row (one read of the list's keys, ``$batch`` writes,
    ``Version`` never older over newer); keyed on `ActionId`.
    """

    kind: Literal[OutboxKind.WRITE_ACTION] = OutboxKind.WRITE_ACTION  # type: ignore[assignment]
    action_id: int
    """The action written (for the audit trail)."""

    def payload(self) -> dict[str, Any]:
        """As a results row's, without `return_id` (an action is not a return)."""
        return self.model_dump(mode="json", exclude={"kind", "return_id"})


class Refresh(_Message):
    """Ask Power BI to refresh a flow's dataset."""

    BUDGET: ClassVar[str] = "`powerbi:{dataset}`"
    OUTCOME: ClassVar[type[_Outcome]] = RefreshStarted

    kind: Literal[OutboxKind.REFRESH] = OutboxKind.REFRESH
    workspace: str = Field(min_length=1)
    """Power BI workspace id."""
    dataset: str = Field(min_length=1)
    """Power BI dataset id."""
    flow_id: str = Field(min_length=1)
    """The flow the dataset serves (its performance team hears of a failed refresh)."""

    def budget(self, mailbox: str) -> str:
        return f"powerbi:{self.dataset}"


class CheckRefresh(_Message):
    """Read where a requested refresh has got to (the engine polls until it finishes)."""

    BUDGET: ClassVar[str] = "`powerbi:{dataset}`"
    OUTCOME: ClassVar[type[_Outcome]] = RefreshChecked

    kind: Literal[OutboxKind.CHECK_REFRESH] = OutboxKind.CHECK_REFRESH
    workspace: str = Field(min_length=1)
    """Power BI workspace id."""
    dataset: str = Field(min_length=1)
    """Power BI dataset id."""
    flow_id: str = Field(min_length=1)
    """The flow the dataset serves."""
    request_id: str = Field(min_length=1)
    """From the `refresh` outcome."""
    poll: int = Field(default=1, ge=1)
    """Which look at the refresh this is (1, 2, …)."""

    def budget(self, mailbox: str) -> str:
        return f"powerbi:{self.dataset}"


Message = Annotated[
    SendCard | UpdateCard | SendMail | WriteBack | WriteAction | Refresh | CheckRefresh,
    Field(discriminator="kind"),
]
"""Any outbox message body, told apart by ``kind``."""

_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)

MESSAGE_TYPES: Mapping[OutboxKind, type[_Message]] = {
    OutboxKind.SEND_CARD: SendCard,
    OutboxKind.UPDATE_CARD: UpdateCard,
    OutboxKind.SEND_MAIL: SendMail,
    OutboxKind.WRITE_BACK: WriteBack,
    OutboxKind.WRITE_ACTION: WriteAction,
    OutboxKind.REFRESH: Refresh,
    OutboxKind.CHECK_REFRESH: CheckRefresh,
}
"""The model of each kind, in the order docs/outbox.md lists them."""


class MessageError(M365PerfError, ValueError):
    """An outbox row that is not a message of its kind; resending it cannot help."""

    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(problem)
        self.kind = kind


class UnknownKind(MessageError):
    """A row whose kind no model is for."""


def parse_message(kind: str, payload: Mapping[str, Any]) -> Message:
    """The message a stored row holds, or :class:`MessageError` saying what is wrong."""
    if kind not in MESSAGE_TYPES:
        raise UnknownKind(kind, f"unknown outbox kind {kind!r}")
    if not isinstance(payload, Mapping):
        raise MessageError(kind, f"bad {kind} row: the payload is not an object")
    try:
        return _MESSAGE.validate_python({**payload, "kind": OutboxKind(kind)})
    except ValidationError as exc:
        raise MessageError(kind, f"bad {kind} row: {describe(exc, under=kind)}") from None


def describe(exc: ValidationError, *, under: str = "") -> str:
    """A validation error in a sentence: where, and what is wrong there.

    ``under``: a leading part of every location to leave out (a union's tag).
    """
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        if under and loc[:1] == [under]:
            loc = loc[1:]
        where = ".".join(str(p) for p in loc)
        if error["type"] == "missing":
            text = "missing"
        elif error["type"] == "extra_forbidden":
            text = "not a field of this kind"
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {text}" if where else text)
    return "; ".join(problems)
