"""Card ids and dedup keys as value objects: built from parts, formatted, parsed back exactly.

A card id travels in the card's data and comes back with every click; a dedup key is
how the store refuses a second copy of a timer or an outbox row. Both are text in the
store, and the text of rows already written must keep its meaning, so the formats are
the ones the engine has always written. ``parse`` accepts only text that ``format``
would write (``parse(text).format() == text``), or raises :class:`IdError` saying why.

Person ids are Entra object ids (GUIDs, which contain ``-``) or, for someone not in the
directory, an e-mail address. So that card ids stay unambiguous with ``-`` inside them:

- an owner request card reads from the right: ``request-{cycle}-{owner}-{round}``, then
  ``-p{part}`` when the request was split, then ``-mail`` for the e-mail copy. A round
  is lower-case letters and digits (``open``, ``reminder2``, ``shown``) and never
  ``mail`` or ``p{n}``, so the owner id is whatever is left and may hold any ``-``;
- an approver's digest reads from the right too: ``digest-{cycle}-{approver}-p{part}``,
  then ``-mail`` for the e-mail copy;
- an approval card ends with the approver's id: ``approval-{return}-v{version}-s{step}-
  {approver}``; an approver id that itself ends in ``-mail`` is refused, because its
  card would read as the e-mail copy of another's;
- no person id, dataset or request id holds ``:`` or white space (GUIDs and e-mail
  addresses never do), which keeps dedup keys (``:``-separated, card ids inside)
  unambiguous.
"""

from __future__ import annotations

import dataclasses
import string
import types
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Self, TypeVar, get_args, get_origin, get_type_hints

from m365perf.errors import M365PerfError

_T = TypeVar("_T")

MAIL_SUFFIX = "-mail"
"""Appended to a Teams card's id for its e-mail copy (the bot could not reach the person)."""

ROUND_OPEN = "open"
"""The owner request sent when the cycle opens."""
ROUND_SHOWN = "shown"
"""The owner request drawn again on demand (the receipt's "return the rest")."""


def reminder_round(number: int) -> str:
    """The round of the ``number``-th reminder (``reminder1``, ``reminder2``, …)."""
    return f"reminder{_whole(number, 'reminder number')}"


def chase_round(timer_id: int) -> str:
    """The round of the request a sent-back return's chase timer sends: ``chase{timer}``.

    Named by the timer, not the chase's number: each return sent back (and each time it
    is) has a ladder of its own, and every chase card needs an id of its own.
    """
    return f"chase{_whole(timer_id, 'timer id')}"


class IdError(M365PerfError, ValueError):
    """Text that is not one of our card ids or dedup keys, or parts that cannot make one."""


class CardIdError(IdError):
    """Not a card id this service writes."""


class DedupKeyError(IdError):
    """Not a dedup key this service writes."""


# --- card ids -------------------------------------------------------------------------


class CardId(ABC):
    """The id of one card sent to one person: which subject, which version, which copy."""

    __slots__ = ()
    _PREFIX: ClassVar[str]
    _WHAT: ClassVar[str]
    _SHAPE: ClassVar[str]
    by_email: bool

    @abstractmethod
    def format(self) -> str:
        """The card id as the card's data and the store carry it."""

    def __str__(self) -> str:
        return self.format()

    @abstractmethod
    def as_email(self) -> Self:
        """The id of this card's e-mail copy (sent when Teams cannot reach the person)."""

    @classmethod
    def parse(cls, text: str) -> CardId:
        """Whichever card id ``text`` is; :class:`CardIdError` if it is none of them."""
        if not isinstance(text, str):
            raise CardIdError(f"a card id is text, not {type(text).__name__}")
        for kind in _CARD_KINDS:
            if text.startswith(kind._PREFIX):
                return kind.parse(text)
        prefixes = ", ".join(repr(k._PREFIX) for k in _CARD_KINDS)
        raise CardIdError(f"{text!r} is not a card id: it starts with none of {prefixes}")

    @classmethod
    def _body(cls, text: str) -> tuple[str, bool]:
        """``text`` without its prefix and its e-mail suffix, and whether it had the suffix."""
        if not isinstance(text, str) or not text.startswith(cls._PREFIX):
            raise CardIdError(f"{text!r} is not {cls._WHAT}: it does not start {cls._PREFIX!r}")
        body = text[len(cls._PREFIX) :]
        by_email = body.endswith(MAIL_SUFFIX)
        return (body[: -len(MAIL_SUFFIX)] if by_email else body), by_email

    @classmethod
    def _misshapen(cls, text: str) -> CardIdError:
        return CardIdError(f"{text!r} is not {cls._WHAT}: expected {cls._SHAPE}")

    @classmethod
    def _built(cls, text: str, build: Callable[[], _T]) -> _T:
        try:
            return _exactly(text, build)
        except IdError as exc:
            raise CardIdError(f"{text!r} is not {cls._WHAT}: {exc}") from None

    def _suffix(self) -> str:
        return MAIL_SUFFIX if self.by_email else ""


@dataclass(frozen=True)
class RequestCardId(CardId):
    """An owner's request card: ``request-{cycle}-{owner}-{round}[-p{part}][-mail]``."""

    _PREFIX: ClassVar[str] = "request-"
    _WHAT: ClassVar[str] = "an owner request card id"
    _SHAPE: ClassVar[str] = "request-{cycle}-{owner}-{round}[-p{part}][-mail]"

    cycle_id: int
    owner_id: str
    round: str
    """Why the request was sent: ``open``, ``reminder{n}``, ``chase{timer}``, ``shown``
    (lower-case letters, then digits if any)."""
    part: int | None = None
    """Which part of a request split because it was too long for one card (1, 2, …)."""
    by_email: bool = False

    def __post_init__(self) -> None:
        _whole(self.cycle_id, "cycle id", CardIdError)
        _text(self.owner_id, "owner id", CardIdError)
        _round(self.round, CardIdError)
        if self.part is not None:
            _whole(self.part, "part", CardIdError, least=1)

    def format(self) -> str:
        part = "" if self.part is None else f"-p{self.part}"
        return f"{self._PREFIX}{self.cycle_id}-{self.owner_id}-{self.round}{part}{self._suffix()}"

    def as_email(self) -> RequestCardId:
        return dataclasses.replace(self, by_email=True)

    def with_part(self, part: int) -> RequestCardId:
        """The id of part ``part`` of this request."""
        return dataclasses.replace(self, part=part)

    def whole(self) -> RequestCardId:
        """The id of the request this card is a part of (itself if it is not split)."""
        return dataclasses.replace(self, part=None)

    @classmethod
    def parse(cls, text: str) -> RequestCardId:
        body, by_email = cls._body(text)
        rest, _, last = body.rpartition("-")
        part: str | None = None
        if _is_part(last):
            part = last[1:]
            rest, _, last = rest.rpartition("-")
        cycle, _, owner = rest.partition("-")
        if not cycle or not owner or not last:
            raise cls._misshapen(text)
        return cls._built(
            text,
            lambda: cls(
                _number(cycle, "cycle id"),
                owner,
                last,
                None if part is None else _number(part, "part"),
                by_email,
            ),
        )


@dataclass(frozen=True)
class ApprovalCardId(CardId):
    """One approver's card for one step: ``approval-{return}-v{version}-s{step}-{approver}``."""

    _PREFIX: ClassVar[str] = "approval-"
    _WHAT: ClassVar[str] = "an approval card id"
    _SHAPE: ClassVar[str] = "approval-{return}-v{version}-s{step}-{approver}[-mail]"

    return_id: int
    version: int
    """The version of the return the approver is asked about."""
    step_index: int
    approver_id: str
    by_email: bool = False

    def __post_init__(self) -> None:
        _whole(self.return_id, "return id", CardIdError)
        _whole(self.version, "version", CardIdError)
        _whole(self.step_index, "step index", CardIdError)
        _text(self.approver_id, "approver id", CardIdError)
        if self.approver_id.endswith(MAIL_SUFFIX):
            raise CardIdError(
                f"approver id {self.approver_id!r} ends in {MAIL_SUFFIX!r}: its card id "
                "would read as the e-mail copy of another approver's card"
            )

    def format(self) -> str:
        return (
            f"{self._PREFIX}{self.return_id}-v{self.version}-s{self.step_index}-"
            f"{self.approver_id}{self._suffix()}"
        )

    def as_email(self) -> ApprovalCardId:
        return dataclasses.replace(self, by_email=True)

    @classmethod
    def parse(cls, text: str) -> ApprovalCardId:
        body, by_email = cls._body(text)
        parts = body.split("-", 3)
        if len(parts) != 4 or parts[1][:1] != "v" or parts[2][:1] != "s":
            raise cls._misshapen(text)
        ret, version, step, approver = parts
        return cls._built(
            text,
            lambda: cls(
                _number(ret, "return id"),
                _number(version[1:], "version"),
                _number(step[1:], "step index"),
                approver,
                by_email,
            ),
        )


@dataclass(frozen=True)
class RejectionCardId(CardId):
    """The card giving a return back to its owner: ``rejection-{return}-v{version}``."""

    _PREFIX: ClassVar[str] = "rejection-"
    _WHAT: ClassVar[str] = "a rejection card id"
    _SHAPE: ClassVar[str] = "rejection-{return}-v{version}[-mail]"

    return_id: int
    version: int
    """The version of the return as it was given back (the owner replaces it)."""
    by_email: bool = False

    def __post_init__(self) -> None:
        _whole(self.return_id, "return id", CardIdError)
        _whole(self.version, "version", CardIdError)

    def format(self) -> str:
        return f"{self._PREFIX}{self.return_id}-v{self.version}{self._suffix()}"

    def as_email(self) -> RejectionCardId:
        return dataclasses.replace(self, by_email=True)

    @classmethod
    def parse(cls, text: str) -> RejectionCardId:
        body, by_email = cls._body(text)
        ret, sep, version = body.partition("-")
        if not sep or version[:1] != "v":
            raise cls._misshapen(text)
        return cls._built(
            text,
            lambda: cls(_number(ret, "return id"), _number(version[1:], "version"), by_email),
        )


@dataclass(frozen=True)
class DigestCardId(CardId):
    """One part of an approver's digest for a cycle: ``digest-{cycle}-{approver}-p{part}``.

    Everything waiting for the approver in the cycle is on the digest, so one approver
    has one card per cycle (split into parts when it would be too large); it is updated
    in place as items arrive and are decided. Read from the right, like a request id.
    """

    _PREFIX: ClassVar[str] = "digest-"
    _WHAT: ClassVar[str] = "an approver digest card id"
    _SHAPE: ClassVar[str] = "digest-{cycle}-{approver}-p{part}[-mail]"

    cycle_id: int
    approver_id: str
    part: int = 1
    by_email: bool = False

    def __post_init__(self) -> None:
        _whole(self.cycle_id, "cycle id", CardIdError)
        _text(self.approver_id, "approver id", CardIdError)
        _whole(self.part, "part", CardIdError, least=1)
        if self.approver_id.endswith(MAIL_SUFFIX):
            raise CardIdError(
                f"approver id {self.approver_id!r} ends in {MAIL_SUFFIX!r}: its card id "
                "would read as the e-mail copy of another approver's card"
            )

    def format(self) -> str:
        return f"{self._PREFIX}{self.cycle_id}-{self.approver_id}-p{self.part}{self._suffix()}"

    def as_email(self) -> DigestCardId:
        return dataclasses.replace(self, by_email=True)

    def with_part(self, part: int) -> DigestCardId:
        """The id of part ``part`` of this digest (its Teams copy)."""
        return dataclasses.replace(self, part=part, by_email=False)

    @classmethod
    def parse(cls, text: str) -> DigestCardId:
        body, by_email = cls._body(text)
        rest, _, last = body.rpartition("-")
        cycle, _, approver = rest.partition("-")
        if not _is_part(last) or not cycle or not approver:
            raise cls._misshapen(text)
        return cls._built(
            text,
            lambda: cls(_number(cycle, "cycle id"), approver, _number(last[1:], "part"), by_email),
        )


_CARD_KINDS: tuple[
    type[RequestCardId] | type[ApprovalCardId] | type[RejectionCardId] | type[DigestCardId], ...
] = (
    RequestCardId,
    ApprovalCardId,
    RejectionCardId,
    DigestCardId,
)


# --- dedup keys -----------------------------------------------------------------------


class DedupKey(ABC):
    """What makes a timer or an outbox row the same one again: ``:``-separated parts.

    Each key class is a frozen dataclass with a ``_TEMPLATE`` naming its fields in
    order (``"cycle:{cycle_id}:reminder:{number}"``); only the last field may hold
    ``:`` (a datetime, or a key inside a key).
    """

    __slots__ = ()
    _TEMPLATE: ClassVar[str]

    def format(self) -> str:
        """The key as the store keeps it."""
        values = {name: _key_text(getattr(self, name)) for name in _field_types(type(self))}
        return self._TEMPLATE.format(**values)

    def __str__(self) -> str:
        return self.format()

    def __post_init__(self) -> None:
        for name, kind in _field_types(type(self)).items():
            _check_key_field(type(self), name, kind, getattr(self, name))

    @classmethod
    def parse(cls, text: str) -> Self:
        """The key ``text`` is, exactly; :class:`DedupKeyError` otherwise."""
        if not isinstance(text, str):
            raise DedupKeyError(f"a dedup key is text, not {type(text).__name__}")
        segments = cls._TEMPLATE.split(":")
        parts = text.split(":", len(segments) - 1)
        shape = f"{cls.__name__} ({cls._TEMPLATE})"
        if len(parts) != len(segments):
            raise DedupKeyError(f"{text!r} is not a {shape}: it has too few parts")
        types_ = _field_types(cls)
        texts: dict[str, str] = {}
        for segment, part in zip(segments, parts, strict=True):
            literal, brace, name = segment.partition("{")
            if not part.startswith(literal) or (not brace and part != literal):
                raise DedupKeyError(f"{text!r} is not a {shape}: {part!r} where {segment!r} goes")
            if brace:
                texts[name.removesuffix("}")] = part[len(literal) :]

        try:
            return _exactly(
                text, lambda: cls(**{n: _from_key_text(types_[n], t, n) for n, t in texts.items()})
            )
        except IdError as exc:
            raise _BadKeyField(f"{text!r} is not a {shape}: {exc}") from None


class _BadKeyField(DedupKeyError):
    """The text has the key's shape, but one of its parts is wrong."""


# Timers (the store's timer table): one per cycle, step or dataset event.


@dataclass(frozen=True)
class ReminderKey(DedupKey):
    """The ``number``-th reminder timer of a cycle."""

    _TEMPLATE: ClassVar[str] = "cycle:{cycle_id}:reminder:{number}"
    cycle_id: int
    number: int


@dataclass(frozen=True)
class EscalateKey(DedupKey):
    """A cycle's escalation timer (owners still outstanding after the reminders)."""

    _TEMPLATE: ClassVar[str] = "cycle:{cycle_id}:escalate"
    cycle_id: int


@dataclass(frozen=True)
class DigestKey(DedupKey):
    """A cycle's morning digest timer for ``day``."""

    _TEMPLATE: ClassVar[str] = "cycle:{cycle_id}:digest:{day}"
    cycle_id: int
    day: date


@dataclass(frozen=True)
class CloseKey(DedupKey):
    """A cycle's close timer (the flow closes it on a date)."""

    _TEMPLATE: ClassVar[str] = "cycle:{cycle_id}:close"
    cycle_id: int


@dataclass(frozen=True)
class StepTimeoutKey(DedupKey):
    """The ``round``-th timeout of an approval step."""

    _TEMPLATE: ClassVar[str] = "step:{step_id}:timeout:{round}"
    step_id: int
    round: int


@dataclass(frozen=True)
class DigestCardKey(DedupKey):
    """An approver's digest drawn again at ``due`` (one per debounce window and approver)."""

    _TEMPLATE: ClassVar[str] = "digest_card:{cycle_id}:{approver_id}:{due}"
    cycle_id: int
    approver_id: str
    due: datetime


@dataclass(frozen=True)
class RefreshKey(DedupKey):
    """A dataset's debounced refresh timer, due at ``due`` (one per debounce window)."""

    _TEMPLATE: ClassVar[str] = "refresh:{dataset}:{due}"
    dataset: str
    due: datetime


@dataclass(frozen=True)
class DeferredRefreshKey(DedupKey):
    """A refresh put off to ``day`` because the dataset's daily budget was used up."""

    _TEMPLATE: ClassVar[str] = "refresh:{dataset}:deferred:{day}"
    dataset: str
    day: date


@dataclass(frozen=True)
class RefreshPollKey(DedupKey):
    """The ``poll``-th look at how a requested refresh is getting on."""

    _TEMPLATE: ClassVar[str] = "refresh_poll:{request_id}:{poll}"
    request_id: str
    poll: int


@dataclass(frozen=True)
class ChaseReturnKey(DedupKey):
    """The ``number``-th chase of a return sent back to its owner as ``version``."""

    _TEMPLATE: ClassVar[str] = "return:{return_id}:v{version}:chase:{number}"
    return_id: int
    version: int
    number: int


@dataclass(frozen=True)
class EscalateReturnKey(DedupKey):
    """The escalation of a return sent back as ``version`` and not returned after its chases."""

    _TEMPLATE: ClassVar[str] = "return:{return_id}:v{version}:escalate"
    return_id: int
    version: int


# Outbox rows: one per message that must go exactly once.


@dataclass(frozen=True)
class CardSendKey(DedupKey):
    """A card sent once, whatever asks for it again."""

    _TEMPLATE: ClassVar[str] = "send:{card_id}"
    card_id: CardId


@dataclass(frozen=True)
class CardRoundKey(DedupKey):
    """A card sent once per round (an approval card asked again after a timeout)."""

    _TEMPLATE: ClassVar[str] = "send:{card_id}:{round}"
    card_id: CardId
    round: str


@dataclass(frozen=True)
class CardOutcomeKey(DedupKey):
    """The outcome shown on another approver's card once a step is decided."""

    _TEMPLATE: ClassVar[str] = "outcome:{step_id}:{approver_id}"
    step_id: int
    approver_id: str


@dataclass(frozen=True)
class DigestUpdateKey(DedupKey):
    """One part of a digest updated in place when its timer (``timer``) fired."""

    _TEMPLATE: ClassVar[str] = "digest_update:{card_id}:{timer}"
    card_id: CardId
    timer: DigestCardKey


@dataclass(frozen=True)
class WriteBackKey(DedupKey):
    """One approved version of a return written to the results list."""

    _TEMPLATE: ClassVar[str] = "writeback:{return_id}:v{version}"
    return_id: int
    version: int


@dataclass(frozen=True)
class RefreshRequestKey(DedupKey):
    """The refresh asked of Power BI when a refresh timer fired."""

    _TEMPLATE: ClassVar[str] = "refresh:{timer}"
    timer: RefreshKey | DeferredRefreshKey


@dataclass(frozen=True)
class CheckRefreshKey(DedupKey):
    """The ``poll``-th status read of a refresh."""

    _TEMPLATE: ClassVar[str] = "check:{request_id}:{poll}"
    request_id: str
    poll: int


@dataclass(frozen=True)
class RefreshFailedMailKey(DedupKey):
    """The performance team told once that a refresh failed."""

    _TEMPLATE: ClassVar[str] = "refresh_failed:{request_id}"
    request_id: str


@dataclass(frozen=True)
class EscalationMailKey(DedupKey):
    """The one escalation e-mail about an owner's outstanding returns in a cycle."""

    _TEMPLATE: ClassVar[str] = "cycle:{cycle_id}:escalate:{owner_id}"
    cycle_id: int
    owner_id: str


@dataclass(frozen=True)
class UnroutableMailKey(DedupKey):
    """The e-mail listing a cycle's indicators that have no owner to ask."""

    _TEMPLATE: ClassVar[str] = "cycle:{cycle_id}:unroutable"
    cycle_id: int


@dataclass(frozen=True)
class ResyncUnroutableMailKey(DedupKey):
    """The e-mail listing what a cycle's ``round``-th resync still cannot route."""

    _TEMPLATE: ClassVar[str] = "cycle:{cycle_id}:unroutable:{round}"
    cycle_id: int
    round: str


@dataclass(frozen=True)
class ClosedMailKey(DedupKey):
    """The e-mail telling the performance team a cycle has closed."""

    _TEMPLATE: ClassVar[str] = "cycle:{cycle_id}:closed"
    cycle_id: int


@dataclass(frozen=True)
class DigestMailKey(DedupKey):
    """The digest e-mail sent when a digest timer fired."""

    _TEMPLATE: ClassVar[str] = "digest:{timer}"
    timer: DigestKey


@dataclass(frozen=True)
class UnroutableReturnMailKey(DedupKey):
    """The e-mail saying a returned figure has nobody to approve it."""

    _TEMPLATE: ClassVar[str] = "return:{return_id}:v{version}:unroutable"
    return_id: int
    version: int


@dataclass(frozen=True)
class ReturnEscalationMailKey(DedupKey):
    """The one e-mail saying a return sent back as ``version`` has not been returned."""

    _TEMPLATE: ClassVar[str] = "return:{return_id}:v{version}:escalation"
    return_id: int
    version: int


TIMER_KEYS: tuple[type[DedupKey], ...] = (
    ReminderKey,
    EscalateKey,
    DigestKey,
    CloseKey,
    StepTimeoutKey,
    RefreshKey,
    DeferredRefreshKey,
    RefreshPollKey,
    ChaseReturnKey,
    EscalateReturnKey,
    DigestCardKey,
)
"""Every kind of timer dedup key; no text parses as two of them."""

OUTBOX_KEYS: tuple[type[DedupKey], ...] = (
    CardSendKey,
    CardRoundKey,
    CardOutcomeKey,
    DigestUpdateKey,
    WriteBackKey,
    RefreshRequestKey,
    CheckRefreshKey,
    RefreshFailedMailKey,
    EscalationMailKey,
    UnroutableMailKey,
    ResyncUnroutableMailKey,
    ClosedMailKey,
    DigestMailKey,
    UnroutableReturnMailKey,
    ReturnEscalationMailKey,
)
"""Every kind of outbox dedup key; no text parses as two of them."""


def parse_timer_key(text: str) -> DedupKey:
    """The timer dedup key ``text`` is."""
    return _parse_one_of(TIMER_KEYS, text, "timer")


def parse_outbox_key(text: str) -> DedupKey:
    """The outbox dedup key ``text`` is."""
    return _parse_one_of(OUTBOX_KEYS, text, "outbox")


def _parse_one_of(kinds: tuple[type[DedupKey], ...], text: str, table: str) -> DedupKey:
    found: list[DedupKey] = []
    near: list[DedupKeyError] = []
    for kind in kinds:
        try:
            found.append(kind.parse(text))
        except _BadKeyField as exc:
            near.append(exc)
        except DedupKeyError:
            continue
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(type(k).__name__ for k in found)
        raise DedupKeyError(f"{text!r} reads as more than one {table} key: {names}")
    if near:
        raise DedupKeyError(str(near[0]))
    raise DedupKeyError(f"{text!r} is not a dedup key of the {table} table")


# --- parts ----------------------------------------------------------------------------

_ROUND_LETTERS = frozenset(string.ascii_lowercase)
_RESERVED_ROUNDS = frozenset({MAIL_SUFFIX[1:]})


def _whole(value: object, what: str, error: type[IdError] = IdError, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise error(f"{what} must be a whole number of at least {least}, not {value!r}")
    return value


def _text(value: object, what: str, error: type[IdError]) -> str:
    if not isinstance(value, str) or not value:
        raise error(f"{what} must be non-empty text, not {value!r}")
    if ":" in value or any(c.isspace() for c in value):
        raise error(f"{what} {value!r} holds ':' or white space, which ids never do")
    return value


def _round(value: object, error: type[IdError]) -> str:
    if not isinstance(value, str) or not value:
        raise error(f"a round must be non-empty text, not {value!r}")
    letters = value.rstrip(string.digits)
    if not letters or not set(letters) <= _ROUND_LETTERS:
        raise error(f"round {value!r} must be lower-case letters, then digits if any")
    if value in _RESERVED_ROUNDS or _is_part(value):
        raise error(f"round {value!r} would read as a part or e-mail suffix of a card id")
    return value


def _is_part(segment: str) -> bool:
    return len(segment) > 1 and segment[0] == "p" and _ascii_digits(segment[1:])


def _ascii_digits(text: str) -> bool:
    return bool(text) and text.isascii() and text.isdigit()


def _number(text: str, what: str) -> int:
    """A whole number written the one way ``str(int)`` writes it."""
    if not _ascii_digits(text) or (len(text) > 1 and text[0] == "0"):
        raise IdError(f"the {what} {text!r} is not a whole number")
    return int(text)


def _exactly(text: str, build: Callable[[], _T]) -> _T:
    """Build the value parsed from ``text``; it must format back to ``text`` exactly.

    The check is what makes parsing exact: ``2026-01-05`` and ``20260105`` are one date,
    but only the first is in a key this service wrote. Raises :class:`IdError` (the
    reason only; the caller says what ``text`` is not).
    """
    value = build()
    if str(value) != text:
        raise IdError(f"this service writes it {str(value)!r}")
    return value


def _field_types(cls: type[DedupKey]) -> dict[str, Any]:
    """The key's fields and their types, in template order (class variables left out)."""
    hints = _HINTS.get(cls)
    if hints is None:
        every = get_type_hints(cls)
        hints = _HINTS[cls] = {k: v for k, v in every.items() if get_origin(v) is not ClassVar}
    return hints


_HINTS: dict[type[DedupKey], dict[str, Any]] = {}


def _alternatives(kind: Any) -> tuple[Any, ...]:
    return get_args(kind) if isinstance(kind, types.UnionType) else (kind,)


def _check_key_field(cls: type[DedupKey], name: str, kind: Any, value: object) -> None:
    what = f"{cls.__name__}.{name}"
    if kind is int:
        _whole(value, what, DedupKeyError)
    elif kind is str:
        _text(value, what, DedupKeyError)
    elif kind is datetime:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise DedupKeyError(f"{what} must be a timezone-aware datetime, not {value!r}")
    elif kind is date:
        if not isinstance(value, date) or isinstance(value, datetime):
            raise DedupKeyError(f"{what} must be a date, not {value!r}")
    elif not isinstance(value, _alternatives(kind)):
        names = " or ".join(k.__name__ for k in _alternatives(kind))
        raise DedupKeyError(f"{what} must be a {names}, not {value!r}")


def _key_text(value: object) -> str:
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return str(value)


def _from_key_text(kind: Any, part: str, name: str) -> Any:
    if kind is int:
        return _number(part, name)
    if kind is str:
        return part
    if kind is datetime or kind is date:
        try:
            return kind.fromisoformat(part)
        except ValueError:
            raise IdError(f"the {name} {part!r} is not a {kind.__name__}") from None
    reasons = []
    for alternative in _alternatives(kind):
        try:
            return alternative.parse(part)
        except IdError as exc:
            reasons.append(str(exc))
    raise IdError(f"the {name} is wrong: {'; '.join(reasons)}")
