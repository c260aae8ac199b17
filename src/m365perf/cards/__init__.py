"""Adaptive cards (Teams and Outlook) and their plain-text e-mail summaries.

Cards are Adaptive Cards 1.5 with Universal Actions (``Action.Execute``, an
``Action.Submit`` fallback), built as data with the typed builders in ``build``; the
schema check is in the tests.
"""

from __future__ import annotations

from m365perf.cards.formatting import format_date, format_moment, format_time, format_value
from m365perf.cards.render import (
    COMMENT_MAX_LENGTH,
    DEFAULT_MAX_BYTES,
    REASON_MAX_LENGTH,
    VALUE_MAX_LENGTH,
    CardTooLargeError,
    card_size,
    outlook_card,
    render_approval,
    render_notice,
    render_outcome,
    render_owner_requests,
    render_receipt,
    render_rejection,
)
from m365perf.cards.submission import OwnerSubmission, SubmissionError, parse_owner_submission
from m365perf.cards.summary import request_subject, summary_text
from m365perf.cards.validation import CardSchemaError, validate_card
from m365perf.cards.views import (
    ApprovalView,
    CommentaryRule,
    Draft,
    IndicatorRequest,
    InputError,
    InputField,
    Outcome,
    OutcomeView,
    OwnerRequestView,
    PeriodValue,
    ReceiptView,
    RejectionView,
    ReturnedIndicator,
    SentBack,
)

__all__ = [
    "COMMENT_MAX_LENGTH",
    "DEFAULT_MAX_BYTES",
    "REASON_MAX_LENGTH",
    "VALUE_MAX_LENGTH",
    "ApprovalView",
    "CardSchemaError",
    "CardTooLargeError",
    "CommentaryRule",
    "Draft",
    "IndicatorRequest",
    "InputError",
    "InputField",
    "Outcome",
    "OutcomeView",
    "OwnerRequestView",
    "OwnerSubmission",
    "PeriodValue",
    "ReceiptView",
    "RejectionView",
    "ReturnedIndicator",
    "SentBack",
    "SubmissionError",
    "card_size",
    "format_date",
    "format_moment",
    "format_time",
    "format_value",
    "outlook_card",
    "parse_owner_submission",
    "render_approval",
    "render_notice",
    "render_outcome",
    "render_owner_requests",
    "render_receipt",
    "render_rejection",
    "request_subject",
    "summary_text",
    "validate_card",
]
