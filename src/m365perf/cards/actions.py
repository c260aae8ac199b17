"""Improvement actions on cards: the inputs to enter one, and the blocks to update or see one.

Built with :mod:`m365perf.cards.build`. The input ids are read back by
:mod:`m365perf.cards.submission`: ``actionwhat__{indicator}``, ``actionwho__{indicator}``,
``actionby__{indicator}`` for a new action, and ``actionstatus__{action}`` and
``actionnote__{action}`` for an open one (whose versions go in the submit data as
``action_versions``).
"""

from __future__ import annotations

from collections.abc import Sequence

from m365perf.cards import build
from m365perf.cards.build import Json
from m365perf.cards.formatting import format_date, shortened
from m365perf.cards.views import ACTION_STATUSES, Draft, OpenAction

__all__ = [
    "ACTION_MAX_LENGTH",
    "ACTION_NOTE_MAX_LENGTH",
    "ACTION_WHO_MAX_LENGTH",
    "DIGEST_ACTIONS_SHOWN",
    "DIGEST_ACTION_SHOWN",
    "action_inputs",
    "action_lines",
    "action_text",
    "action_versions",
    "approver_actions_block",
    "digest_actions_block",
    "open_actions_block",
]

ACTION_MAX_LENGTH = 1000
"""The longest "what will be done" a card takes."""
ACTION_WHO_MAX_LENGTH = 254
"""The longest e-mail address there is."""
ACTION_NOTE_MAX_LENGTH = 1000
"""The longest progress note a card takes."""

DIGEST_ACTIONS_SHOWN = 3
"""Actions listed per digest item (the rest counted): the digest is a list."""
DIGEST_ACTION_SHOWN = 200
"""Characters of an action's "what" on a digest item; its approval card has it all."""

_STATUS_WORDS = dict(ACTION_STATUSES)


def _date_input(input_id: str, *, label: str, value: str) -> Json:
    """An Input.Date (``YYYY-MM-DD``); build.py has no builder for one yet."""
    result: Json = {"type": "Input.Date", "id": input_id, "label": label}
    if value:
        result["value"] = value
    return result


def action_inputs(indicator_id: str, hint: str, draft: Draft, errors: Sequence[str]) -> list[Json]:
    """What will be done, by whom, by when: entered with the figure, errors right under them."""
    items: list[Json] = [
        build.text_block("Improvement action", weight="bolder", size="small", spacing="medium"),
        build.text_block(hint, subtle=True, spacing="none"),
        build.text_input(
            f"actionwhat__{indicator_id}",
            label="What will be done",
            placeholder="The action that will bring the figure back on track",
            value=draft.action_what,
            multiline=True,
            max_length=ACTION_MAX_LENGTH,
        ),
        build.column_set(
            [
                build.column(
                    [
                        build.text_input(
                            f"actionwho__{indicator_id}",
                            label="By whom",
                            placeholder="E-mail address (blank: you)",
                            value=draft.action_who,
                            max_length=ACTION_WHO_MAX_LENGTH,
                        )
                    ]
                ),
                build.column(
                    [
                        _date_input(
                            f"actionby__{indicator_id}", label="By when", value=draft.action_by
                        )
                    ]
                ),
            ],
            spacing="small",
        ),
    ]
    items += [build.text_block(e, color="attention", spacing="small") for e in errors]
    return items


def action_lines(action: OpenAction) -> list[Json]:
    """An action as text: what, who, by when, where it stands (and overdue, if it is)."""
    lines = [
        build.rich_text([build.text_run(action.raised_for, weight="bolder")]),
        build.rich_text([build.text_run(action.what)], spacing="none"),
        build.rich_text(_standing_runs(action), spacing="none"),
    ]
    if action.note:
        lines.append(
            build.rich_text(
                [build.text_run("Note: ", subtle=True), build.text_run(action.note)],
                spacing="none",
            )
        )
    return lines


def _standing_runs(action: OpenAction, *, lead: str = "") -> list[Json]:
    """Who, by when, the status and (in the attention colour) overdue."""
    runs = [
        build.text_run(f"{lead}{action.who_name}, by {format_date(action.due)}", subtle=True),
        build.text_run(f" · {_STATUS_WORDS[action.status]}"),
    ]
    if action.overdue:
        runs.append(build.text_run(" · Overdue", color="attention", weight="bolder"))
    return runs


def action_text(action: OpenAction, *, limit: int = DIGEST_ACTION_SHOWN) -> str:
    """An action on one plain line, for the approvals web page and e-mail bodies."""
    overdue = ", overdue" if action.overdue else ""
    return (
        f"{shortened(action.what, limit)} — {action.who_name}, by {format_date(action.due)}, "
        f"{_STATUS_WORDS[action.status].lower()}{overdue}"
    )


def digest_actions_block(actions: Sequence[OpenAction]) -> list[Json]:
    """A digest item's actions, one short line each: what, who, by when, status, overdue."""
    if not actions:
        return []
    lines: list[Json] = []
    for action in actions[:DIGEST_ACTIONS_SHOWN]:
        runs = [
            build.text_run("Action: ", weight="bolder"),
            build.text_run(shortened(action.what, DIGEST_ACTION_SHOWN)),
            *_standing_runs(action, lead=" — "),
        ]
        lines.append(build.rich_text(runs, spacing="none"))
    more = len(actions) - DIGEST_ACTIONS_SHOWN
    if more > 0:
        lines.append(
            build.rich_text(
                [build.text_run(f"and {more} more improvement actions", subtle=True)],
                spacing="none",
            )
        )
    return [build.container(lines, spacing="small")]


def open_actions_block(actions: Sequence[OpenAction]) -> list[Json]:
    """The owner's open actions, each with its status and a note to update it."""
    if not actions:
        return []
    items: list[Json] = [
        build.heading("Your improvement actions"),
        build.text_block(
            "Say where each action stands; they are updated when you submit this card.",
            subtle=True,
            spacing="none",
        ),
    ]
    for action in actions:
        inner = action_lines(action)
        inner.append(
            build.choice_set(
                f"actionstatus__{action.action_id}",
                [(words, value) for value, words in ACTION_STATUSES],
                label="Status",
                value=action.status,
            )
        )
        inner.append(
            build.text_input(
                f"actionnote__{action.action_id}",
                label="Progress note",
                placeholder="What has happened since",
                value=action.note,
                multiline=True,
                max_length=ACTION_NOTE_MAX_LENGTH,
            )
        )
        inner += [build.text_block(e, color="attention", spacing="small") for e in action.errors]
        items.append(build.container(inner, separator=True, spacing="medium"))
    return [build.container(items, separator=True, spacing="large")]


def approver_actions_block(actions: Sequence[OpenAction]) -> list[Json]:
    """For an approver: the action entered with the figure and the indicator's open ones."""
    if not actions:
        return []
    items: list[Json] = [build.text_block("Improvement actions", weight="bolder")]
    for action in actions:
        items.append(build.container(action_lines(action), spacing="small"))
    return [build.container(items, separator=True)]


def action_versions(actions: Sequence[OpenAction]) -> dict[str, int]:
    """The submit data's ``action_versions``: which versions the card was drawn for."""
    return {str(a.action_id): a.version for a in actions}
