"""Fuzzing the owners' web form: malformed posts never give a 500 or a traceback.

Each case starts from what a browser posts on the form behind a genuine signed link,
then breaks it: fields replaced by hostile values (30,000-character commentaries, huge
or negative versions, another owner's or cycle's id, NUL), fields dropped, doubled or
made up, bytes that are not UTF-8, a wrong content type, or the link's token cut or
altered. The real web app, engine and SQLite store answer it. A refused post (any
4xx) must leave the returns, outbox and audit trail as they were.

CI size 150; full size 1,000::

    M365PERF_FULL_SIZE=1 .venv/bin/pytest tests/reliability/test_fuzz_form.py -q -s
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fuzz_support import SEED, Tally, finish, hostile
from reliability_support import sized

from link_support import (  # isort: skip
    SECRET,
    FormPage,
    make_client,
    make_linked_council,
    newest_link,
    path_of,
    snapshot,
)
from m365perf.web.links import LinkSigner  # isort: skip

CASES = sized(150, 1_000)
ANN = "ann.lee@contoso.gov.uk"
FORM = "application/x-www-form-urlencoded"


def _text(value: Any) -> str:
    """A hostile value as a form field can carry it (forms carry text only)."""
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)


def _break(rng: random.Random, fields: dict[str, str]) -> bytes:
    """The form's fields, broken one to three ways, encoded as a browser would (or not)."""
    pairs = list(fields.items())
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.45 and pairs:
            index = rng.randrange(len(pairs))
            pairs[index] = (pairs[index][0], _text(hostile(rng)))
        elif roll < 0.6 and pairs:
            del pairs[rng.randrange(len(pairs))]
        elif roll < 0.7 and pairs:
            pairs.append(rng.choice(pairs))
        elif roll < 0.85:
            prefix = rng.choice(["value", "comment", "version", "actionversion", "nodata", "x"])
            pairs.append((f"{prefix}__{_text(hostile(rng))[:30]}", _text(hostile(rng))))
        else:
            name = rng.choice(["cycle_id", "owner_id", "card_id"])
            pairs = [(k, v) for k, v in pairs if k != name] + [(name, _text(hostile(rng)))]
    body = urlencode(pairs, quote_via=quote, errors="surrogatepass").encode("ascii")
    if rng.random() < 0.08:
        body += b"&comment__CP001=" + bytes(rng.randrange(256) for _ in range(20))
    return body


def _path(rng: random.Random, path: str) -> str:
    """Usually the genuine link's path; sometimes cut, altered or padded."""
    roll = rng.random()
    if roll > 0.15:
        return path
    token = path.removeprefix("/returns/")
    if roll < 0.05:
        return "/returns/" + token[: rng.randrange(len(token))]
    if roll < 0.1:
        index = rng.randrange(len(token))
        return "/returns/" + token[:index] + rng.choice("A_-.%") + token[index + 1 :]
    return "/returns/" + token + "x" * rng.choice([1, 3000])


def test_malformed_form_posts_never_fail_the_service(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rng = random.Random(SEED)
    council = make_linked_council(LinkSigner(SECRET))
    client = make_client(council, LinkSigner(SECRET))
    path = path_of(newest_link(council, ANN))
    page = FormPage.read(client.get(path).text)
    fields = page.submission()
    tally = Tally()
    started = time.monotonic()
    for case in range(CASES):
        body = _break(rng, fields)
        kind = FORM if rng.random() > 0.05 else rng.choice(["text/plain", "application/json", ""])
        before = snapshot(council)
        answer = client.post(_path(rng, path), content=body, headers={"Content-Type": kind})
        tally.saw(answer.status_code)
        if answer.status_code >= 400 and snapshot(council) != before:
            tally.changed_when_refused.append(f"case {case}: {body[:300]!r}")
        if answer.status_code == 200 and rng.random() < 0.3:
            page = FormPage.read(client.get(path).text)  # the form as it stands now
            fields = page.submission() or fields
    finish("fuzz_form", tally, caplog.records, cases=CASES, started=started)
