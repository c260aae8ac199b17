"""An approver's digest: everything waiting for them in a cycle, on one card.

The engine fills a :class:`DigestView` (``m365perf.engine.digest``); this module draws
it, grouped by service, with Approve and Reject per item and "Approve all items without
flags" for the lot, split into parts when one card would be over the size limit. Like
the other cards it reads no store and no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from m365perf.cards import build as b
from m365perf.cards.actions import digest_actions_block
from m365perf.cards.build import Json, text_run
from m365perf.cards.formatting import (
    as_rag,
    as_unit,
    check_direction,
    direction_colour,
    direction_word,
    format_value,
    rag_colour,
    rag_word,
    shortened,
    target_text,
)
from m365perf.cards.render import REASON_MAX_LENGTH, CardTooLargeError, card_size
from m365perf.cards.views import OpenAction
from m365perf.domain.kinds import Polarity, Rag, Unit

__all__ = [
    "APPROVE_ALL_VERB",
    "APPROVE_VERB",
    "REFRESH_VERB",
    "REJECT_VERB",
    "DigestItem",
    "DigestService",
    "DigestView",
    "digest_summary",
    "reason_input_id",
    "render_digest",
]

APPROVE_VERB = "digestApprove"
"""Approve one item of a digest (its data names the return, version and step)."""
REJECT_VERB = "digestReject"
"""Reject one item of a digest, with the reason typed under it."""
APPROVE_ALL_VERB = "digestApproveAll"
"""Approve every item without flags shown on the clicked part."""
REFRESH_VERB = "digestRefresh"
"""Draw the digest again as it stands (Outlook's and Teams' card refresh)."""

COMMENTARY_SHOWN = 600
"""Characters of commentary shown per item: the digest is a list, the web page has it all."""


@dataclass(frozen=True)
class DigestItem:
    """One return waiting for the approver at one step of its chain.

    ``flags`` are what an approver should look at before approving (late, an unusual
    value the officer confirmed, probable missing data, no data); "approve all" leaves
    flagged items alone. ``direction`` is the direction of travel on the previous period.
    ``actions`` are the improvement actions the approver's card shows for it: the one
    entered with this figure and the indicator's open ones (overdue decided by the engine).
    """

    return_id: int
    version: int
    step_index: int
    step_count: int
    step_name: str
    indicator_key: str
    indicator_name: str
    owner_name: str
    service: str
    unit: Unit
    value: float | None
    polarity: Polarity = Polarity.NONE
    no_data_reason: str | None = None
    target: float | None = None
    rag: Rag = Rag.NONE
    variation: str | None = None
    direction: str | None = None
    flags: tuple[str, ...] = ()
    commentary: str | None = None
    actions: tuple[OpenAction, ...] = ()
    acting_for: str | None = None
    """The away approver this item is decided for (a delegation), or None: the approver's own."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", as_unit(self.unit))
        object.__setattr__(self, "actions", tuple(self.actions))
        object.__setattr__(self, "rag", as_rag(self.rag))
        object.__setattr__(self, "flags", tuple(self.flags))
        if self.direction is not None:
            check_direction(self.direction)
        if not 0 <= self.step_index < self.step_count:
            raise ValueError(f"step {self.step_index} is not below {self.step_count}")

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def ref(self) -> Json:
        """What a click on this item carries back: which return, version and step."""
        return {
            "return_id": self.return_id,
            "version": self.version,
            "step_index": self.step_index,
        }


@dataclass(frozen=True)
class DigestService:
    """The items of one service (the register's service column; "Other" when blank)."""

    name: str
    items: tuple[DigestItem, ...]


@dataclass(frozen=True)
class DigestView:
    """One approver's digest for one cycle, in the order it is shown.

    ``notes`` report what became of the approver's last click, item by item (approved,
    decided by a colleague first, out of date); ``done`` counts the items this
    approver's steps have had decided this cycle, by anyone.
    """

    cycle_id: int
    approver_id: str
    approver_name: str
    flow_name: str
    period_label: str
    services: tuple[DigestService, ...]
    notes: tuple[str, ...] = ()
    done: int = 0
    link: str = ""

    @property
    def items(self) -> tuple[DigestItem, ...]:
        return tuple(item for service in self.services for item in service.items)

    @property
    def unflagged(self) -> tuple[DigestItem, ...]:
        return tuple(item for item in self.items if not item.flagged)

    def find(self, return_id: int) -> DigestItem | None:
        return next((i for i in self.items if i.return_id == return_id), None)


def reason_input_id(return_id: int) -> str:
    """The id of the reason box under an item (sent with every click on the card)."""
    return f"reason__{return_id}"


# --- drawing ---------------------------------------------------------------------------


def render_digest(
    view: DigestView, card_id_for: Callable[[int], str], *, max_bytes: int
) -> list[Json]:
    """The digest as one card, or as parts each under ``max_bytes``.

    ``card_id_for(part)`` names part ``part`` (1, 2, …); every item is on exactly one part,
    in the view's order, and each part's "approve all" covers only the items it shows.
    """
    entries = [(service.name, item) for service in view.services for item in service.items]
    whole = _card(view, entries, 1, 1, card_id_for(1))
    if card_size(whole) <= max_bytes:
        return [whole]
    chunks: list[list[tuple[str, DigestItem]]] = [[]]
    for entry in entries:
        trial = [*chunks[-1], entry]
        # Measured as a part "999 of 999" so the labels can only shrink afterwards.
        if chunks[-1] and card_size(_card(view, trial, 999, 999, card_id_for(999))) > max_bytes:
            chunks.append([entry])
        else:
            chunks[-1] = trial
    total = len(chunks)
    cards = [_card(view, chunk, n, total, card_id_for(n)) for n, chunk in enumerate(chunks, 1)]
    for number, card in enumerate(cards, 1):
        if card_size(card) > max_bytes:
            raise CardTooLargeError(f"part {number} of the digest is over {max_bytes} bytes")
    return cards


def digest_summary(view: DigestView) -> str:
    """The e-mail's plain body: what waits, and where to act without a card."""
    items = view.items
    lines = [
        f"{view.flow_name} {view.period_label}: {len(items)} "
        f"{'item waits' if len(items) == 1 else 'items wait'} for your approval.",
    ]
    for service in view.services:
        lines.append("")
        lines.append(service.name)
        for item in service.items:
            flags = f" [{'; '.join(item.flags)}]" if item.flags else ""
            lines.append(
                f"- {item.indicator_name}: {_value_text(item)} ({rag_word(item.rag)}){flags}"
            )
    # The link to the approvals page goes beside this text as the e-mail's button
    # (``m365.mail.actionable_html``), never as a long line of text.
    return "\n".join(lines)


def _card(
    view: DigestView,
    entries: Sequence[tuple[str, DigestItem]],
    part: int,
    parts: int,
    card_id: str,
) -> Json:
    items = [item for _, item in entries]
    unflagged = [item for item in items if not item.flagged]
    title = f"Approvals waiting: {view.flow_name}, {view.period_label}"
    if parts > 1:
        title += f" (part {part} of {parts})"
    count = len(view.items)
    flagged = count - len(view.unflagged)
    body: list[Json] = [
        b.text_block(title, weight="bolder", size="medium"),
        b.rich_text(
            [
                text_run(f"For {view.approver_name}: ", subtle=True),
                text_run(
                    f"{count} {'item' if count == 1 else 'items'} waiting"
                    + (f", {flagged} flagged" if flagged else "")
                    + (f"; {view.done} decided so far" if view.done else ""),
                    subtle=True,
                ),
            ],
            spacing="none",
        ),
    ]
    for note in view.notes:
        body.append(b.rich_text([text_run(note, color="attention")]))
    if not items:
        body.append(
            b.rich_text(
                [
                    text_run(
                        "Nothing is waiting for you on this card."
                        if count
                        else "Nothing is waiting for you: you are up to date."
                    )
                ],
                spacing="medium",
            )
        )
    data_common = {"cycle_id": view.cycle_id, "card_id": card_id}
    current = None
    for service, item in entries:
        if service != current:
            current = service
            body.append(b.text_block(service, weight="bolder", separator=True, spacing="large"))
        body.append(_item(item, data_common))
    if view.link:
        body.append(
            b.rich_text(
                [text_run("Prefer the web? Open in your browser, sign in and decide there.")],
                spacing="medium",
            )
        )
    actions: list[Json] = []
    if unflagged:
        actions.append(
            b.execute(
                f"Approve all {len(unflagged)} without flags",
                APPROVE_ALL_VERB,
                {**data_common, "items": [i.ref for i in unflagged]},
                inputs="none",
                style="positive",
            )
        )
    actions.append(b.execute("Refresh", REFRESH_VERB, data_common, inputs="none"))
    if view.link:
        # The approver's signed-in web page, for a client that cannot run the buttons.
        actions.append(b.open_url("Open in your browser", view.link))
    # Drawn again whenever it is opened: always in Outlook (an e-mail cannot be updated),
    # and in Teams for everyone in the chat (no userIds: a 1:1 chat has two members).
    refresh = {"action": {"type": "Action.Execute", "verb": REFRESH_VERB, "data": data_common}}
    return b.card(
        body,
        actions=actions,
        fallback_text=f"{title}: {count} waiting for your approval.",
        refresh=refresh,
    )


def _item(item: DigestItem, common: Json) -> Json:
    value_runs = [text_run(_value_text(item), weight="bolder")]
    if item.value is not None:
        value_runs += [
            text_run("  "),
            text_run(rag_word(item.rag), color=rag_colour(item.rag), weight="bolder"),
        ]
    if item.target is not None:
        value_runs.append(text_run(f"  · {target_text(item.target, item.unit, item.polarity)}"))
    detail: list[Json] = []
    if item.direction:
        detail += [
            text_run(
                direction_word(item.direction).capitalize(),
                color=direction_colour(item.direction),
            ),
            text_run(" on the previous period"),
        ]
    if item.variation:
        if detail:
            detail.append(text_run(" · "))
        detail.append(text_run(f"Variation: {item.variation}", subtle=True))
    lines: list[Json] = [
        b.rich_text(
            [
                text_run(item.indicator_name, weight="bolder"),
                text_run(f" — {item.owner_name}", subtle=True),
            ]
        ),
        b.rich_text(
            [
                text_run(
                    f"Step {item.step_index + 1} of {item.step_count}: {item.step_name}"
                    + (f", for {item.acting_for}" if item.acting_for else ""),
                    subtle=True,
                )
            ],
            spacing="none",
        ),
        b.rich_text(value_runs, spacing="none"),
    ]
    if detail:
        lines.append(b.rich_text(detail, spacing="none"))
    if item.flags:
        lines.append(
            b.container(
                [
                    b.rich_text(
                        [text_run("Flags: ", weight="bolder"), text_run("; ".join(item.flags))]
                    )
                ],
                style="warning",
            )
        )
    commentary = (item.commentary or "").strip()
    lines.append(
        b.rich_text(
            [text_run(shortened(commentary, COMMENTARY_SHOWN))]
            if commentary
            else [text_run("No commentary given.", subtle=True, italic=True)],
            spacing="small",
        )
    )
    lines += digest_actions_block(item.actions)
    reason_id = reason_input_id(item.return_id)
    data = {**common, **item.ref}
    lines.append(
        b.text_input(
            reason_id,
            label="Reason, to reject",
            placeholder="What should the officer correct?",
            max_length=REASON_MAX_LENGTH,
        )
    )
    lines.append(
        b.action_set(
            [
                b.execute("Approve", APPROVE_VERB, data, inputs="none", style="positive"),
                b.execute("Reject", REJECT_VERB, data, inputs="auto", style="destructive"),
            ]
        )
    )
    return b.container(lines, separator=True)


def _value_text(item: DigestItem) -> str:
    if item.value is None:
        return f"No data — {item.no_data_reason or 'no reason given'}"
    return format_value(item.value, item.unit)
