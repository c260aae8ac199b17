"""``/returns/{token}``: the owner's web form, reached by the signed link in their e-mail.

For officers whose client shows no cards and partners without a council account. The
link is the whole of the proof (:mod:`m365perf.web.links`): it names one owner and one
cycle, and whoever holds it acts as that owner for that cycle, nothing more. So the
caller always comes from the verified link, never from the form; a form that names
another owner or cycle is refused before the engine sees it.

``GET`` draws the engine's own view of the owner's list (the card's content) as HTML.
``POST`` turns the form into the data a card click carries and hands it to the engine,
which judges it exactly as it judges a click; what comes back (the list again with the
errors and what was typed, or a receipt) is drawn as HTML. A stale page changes
nothing and shows how things stand now.

The token is in the URL, so every answer says ``Referrer-Policy: no-referrer`` and
``Cache-Control: no-store``, may not be framed, and the access log shows the path
without it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from m365perf.cards import ReceiptView
from m365perf.engine import ActionError, Caller, Engine
from m365perf.engine.returns import submit_returns_view
from m365perf.engine.views import owner_request
from m365perf.messages.ids import ROUND_SHOWN, RequestCardId
from m365perf.store import NotFound
from m365perf.web.links import ExpiredLink, LinkError, LinkSigner, ReturnLink
from m365perf.web.return_pages import STYLE_HASH, render_form, render_problem, render_receipt

__all__ = ["MAX_FORM_BYTES", "add_return_form"]

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 256 * 1024
"""A full form of 100 indicators with long commentaries is well under this."""

_MAX_FIELDS = 2000
_FORM_TYPE = "application/x-www-form-urlencoded"
_INPUTS = (
    "value",
    "comment",
    "nodata",
    "nodatareason",
    "confirm",
    "actionwhat",
    "actionwho",
    "actionby",
)
_ACTION_INPUTS = ("actionstatus", "actionnote")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src '{STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_ASK_AGAIN = "If you still need to return figures, ask the performance team for a new link."
_SORRY = "Something went wrong on our side. Nothing was saved. Please try again in a few minutes."
_TOKEN_IN_PATH = re.compile(r"/returns/[^/?#\s]+")


class _Refused(Exception):
    """A request answered with a problem page; nothing changed."""

    def __init__(self, status: int, title: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.hint = status, title, message, hint


def add_return_form(
    app: FastAPI, engine: Engine, links: LinkSigner | None, *, clock: Callable[[], datetime]
) -> None:
    """Serve the owners' web form on ``app``; with no ``links`` every link is refused."""
    form = _ReturnForm(engine, links, clock)
    _keep_tokens_out_of_access_log()

    @app.get("/returns/{token}", response_class=HTMLResponse)
    def show_returns(token: str) -> Response:
        return form.show(token)

    @app.post("/returns/{token}", response_class=HTMLResponse)
    async def submit_returns(token: str, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != _FORM_TYPE:
            return _problem(
                _Refused(415, "Not a form", "This address takes the returns form only.")
            )
        try:
            body = await _read_limited(request, MAX_FORM_BYTES)
        except _Refused as refused:
            return _problem(refused)
        return await run_in_threadpool(form.submit, token, body)


class _ReturnForm:
    def __init__(
        self, engine: Engine, links: LinkSigner | None, clock: Callable[[], datetime]
    ) -> None:
        self._engine = engine
        self._links = links
        self._clock = clock

    def show(self, token: str) -> Response:
        now = self._clock()
        try:
            link = self._verify(token, now)
            with self._engine.store.transaction() as tx:
                try:
                    cycle = tx.get_cycle(link.cycle_id)
                except NotFound:
                    raise _gone_cycle() from None
                returns = tx.list_returns(cycle_id=link.cycle_id, owner_id=link.owner_id)
                if not returns:
                    raise _Refused(
                        404,
                        "Nothing to return",
                        "There are no returns for you in this cycle: the indicators may have "
                        "been given to someone else.",
                        "Ask the performance team if you think this is wrong.",
                    )
                person = tx.find_person(link.owner_id)
                view = owner_request(
                    tx,
                    self._engine.ctx,
                    cycle,
                    link.owner_id,
                    person.name if person else link.owner_id,
                    returns,
                    card_id=_card_id(link),
                    now=now,
                )
        except _Refused as refused:
            return _problem(refused)
        except Exception:  # the person must get a page, not a stack trace
            log.exception("a returns form could not be drawn")
            return _problem(_Refused(500, "Sorry", _SORRY))
        return _html(render_form(view, expires=link.expires))

    def submit(self, token: str, body: bytes) -> Response:
        now = self._clock()
        try:
            link = self._verify(token, now)
            fields = _parse_form(body)
            if fields.get("cycle_id") != str(link.cycle_id) or fields.get("owner_id") != (
                link.owner_id
            ):
                raise _Refused(
                    403,
                    "Not your form",
                    "This form does not belong to the link it was sent to, so nothing was saved.",
                    "Open the link from your e-mail again and fill in the form there.",
                )
            data = _card_data(fields)
            stale, name = self._before(link, data)
            try:
                view = submit_returns_view(
                    self._engine.store,
                    self._engine.ctx,
                    Caller(link.owner_id, name),
                    data,
                    now=now,
                )
            except ActionError as refused:
                log.info("web return for cycle %s refused: %s", link.cycle_id, refused.message)
                raise _Refused(
                    refused.status, "Not saved", refused.message, "Nothing was saved."
                ) from None
        except _Refused as refused:
            return _problem(refused)
        except Exception:  # the person must get a page, not a stack trace
            log.exception("a web return failed")
            return _problem(_Refused(500, "Sorry", _SORRY))
        notice = None
        if stale:
            notice = (
                f"{', '.join(stale)} changed after you opened this page (returned "
                "elsewhere, or sent back to you), so what you typed for "
                f"{'it' if len(stale) == 1 else 'them'} was not saved. This is how things "
                "stand now."
            )
        if isinstance(view, ReceiptView):
            return _html(render_receipt(view, form_url=f"/returns/{token}", notice=notice))
        return _html(render_form(view, expires=link.expires, notice=notice))

    def _verify(self, token: str, now: datetime) -> ReturnLink:
        if self._links is None:
            raise _Refused(
                404,
                "Link not recognised",
                "This service does not take returns by web link.",
                "Use the card in Teams or Outlook, or ask the performance team.",
            )
        try:
            link = self._links.verify_return(token, now=now)
        except ExpiredLink as expired:
            raise _Refused(410, "This link has expired", expired.message, _ASK_AGAIN) from None
        except LinkError as bad:
            raise _Refused(bad.status, "Link not recognised", bad.message) from None
        with self._engine.store.transaction() as tx:
            revoked = tx.link_revoked(link.cycle_id, link.owner_id, link.issued)
        if revoked:
            raise _Refused(
                410,
                "This link has been withdrawn",
                "The performance team has withdrawn this link, so it no longer opens "
                "your returns. Nothing was saved.",
                _ASK_AGAIN,
            )
        return link

    def _before(self, link: ReturnLink, data: Mapping[str, Any]) -> tuple[list[str], str]:
        """What was typed for indicators that changed since the form was drawn (by name).

        The engine ignores those figures; the page says so rather than dropping them
        silently. Also the owner's name, for the engine's caller.
        """
        versions: Mapping[str, int] = data["versions"]
        stale: list[str] = []
        with self._engine.store.transaction() as tx:
            try:
                cycle = tx.get_cycle(link.cycle_id)
            except NotFound:
                raise _gone_cycle() from None
            for key, version in versions.items():
                typed = any(data.get(f"{prefix}__{key}") for prefix in _INPUTS)
                ret = tx.find_return(link.cycle_id, key)
                if typed and ret is not None and ret.version != version:
                    indicator = tx.find_indicator(cycle.flow_id, key)
                    stale.append(indicator.name if indicator else key)
            person = tx.find_person(link.owner_id)
        return stale, person.name if person else link.owner_id


def _card_data(fields: Mapping[str, str]) -> dict[str, Any]:
    """The form as the data of a card's "Submit returns" click."""
    data: dict[str, Any] = {
        name: fields[name] for name in ("cycle_id", "owner_id", "card_id") if name in fields
    }
    versions: dict[str, int] = {}
    action_versions: dict[str, int] = {}
    for name, value in fields.items():
        prefix, sep, indicator_id = name.partition("__")
        if not sep or not indicator_id:
            continue
        if prefix == "actionversion":
            if not value.isascii() or not value.isdigit() or len(value) > 9 or int(value) < 1:
                raise _Refused(400, "Not saved", "The form's version of an action is damaged.")
            action_versions[indicator_id] = int(value)
        elif prefix in _ACTION_INPUTS:
            data[name] = value
        elif prefix == "version":
            if not value.isascii() or not value.isdigit() or len(value) > 9 or int(value) < 1:
                raise _Refused(
                    400, "Not saved", f"The form's version of {indicator_id} is damaged."
                )
            versions[indicator_id] = int(value)
        elif prefix in _INPUTS:
            data[name] = value
    if not versions:
        raise _Refused(
            400,
            "Nothing to submit",
            "Everything on this form had already been returned.",
            "Open the link from your e-mail again to see where your returns stand.",
        )
    data["versions"] = versions
    if action_versions:
        data["action_versions"] = action_versions
    return data


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=_MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "Not saved", "The form could not be read.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise _Refused(400, "Not saved", f"The form sent {name!r} twice.")
        fields[name] = value
    return fields


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    too_big = _Refused(
        413,
        "Too much text",
        "The form is larger than this service accepts, so nothing was saved.",
        "Shorten the commentaries and submit again.",
    )
    if declared.strip().isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _gone_cycle() -> _Refused:
    return _Refused(
        404, "Cycle not found", "The reporting cycle this link was for no longer exists."
    )


def _card_id(link: ReturnLink) -> str:
    """The form stands for the owner's request drawn again, as the engine draws it."""
    return str(RequestCardId(link.cycle_id, link.owner_id, ROUND_SHOWN))


def _html(page: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status_code=status, headers=_HEADERS)


def _problem(refused: _Refused) -> HTMLResponse:
    return _html(render_problem(refused.title, refused.message, refused.hint), refused.status)


class _RedactTokens(logging.Filter):
    """Uvicorn's access log writes the path, and the path holds the link's token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "/returns/" in a for a in args):
            record.args = tuple(
                _TOKEN_IN_PATH.sub("/returns/[link]", a) if isinstance(a, str) else a for a in args
            )
        return True


def _keep_tokens_out_of_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactTokens) for f in access.filters):
        access.addFilter(_RedactTokens())
