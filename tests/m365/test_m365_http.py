"""The HTTP core: retries, Retry-After, typed errors, budgets (with a virtual clock)."""

from __future__ import annotations

import random
import threading
from email.utils import formatdate

import pytest
import requests
import responses
from m365_support import FakeClock

from m365perf.m365.auth import StaticToken
from m365perf.m365.errors import (
    BadRequest,
    M365Error,
    NotFound,
    PreconditionFailed,
    ServerError,
    ThrottledError,
    TransportError,
    Unauthorized,
)
from m365perf.m365.http import (
    ApiClient,
    Budget,
    Budgets,
    HttpCore,
    Limits,
    RetryPolicy,
    new_session,
)

BASE = "https://graph.test/v1.0"
URL = f"{BASE}/users/u1"
SECRET_TOKEN = "eyJ-secret-token"


def make_api(clock: FakeClock, *, budget: Budget | None = None, **retry: float) -> ApiClient:
    core = HttpCore(new_session("NONISV|Council|m365perf/0.1"), clock=clock, rng=random.Random(7))
    policy = RetryPolicy(**retry)  # type: ignore[arg-type]
    return ApiClient(
        core,
        BASE,
        tokens=StaticToken(SECRET_TOKEN),
        budget=budget or Budget("graph", clock=clock),
        retry=policy,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mocked() -> responses.RequestsMock:
    with responses.RequestsMock() as mock:
        yield mock


def test_sends_token_user_agent_and_timeouts(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.get(URL, json={"id": "u1"})
    api = make_api(clock)

    assert api.get_json("users/u1") == {"id": "u1"}

    sent = mocked.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {SECRET_TOKEN}"
    assert sent.headers["User-Agent"] == "NONISV|Council|m365perf/0.1"
    assert sent.req_kwargs["timeout"] == (5.0, 30.0)


def test_retry_after_in_seconds_is_waited_then_succeeds(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.get(URL, status=429, headers={"Retry-After": "7"}, json={"error": {"code": "x"}})
    mocked.get(URL, json={"id": "u1"})

    assert make_api(clock).get_json("users/u1") == {"id": "u1"}
    assert clock.sleeps == [7.0]


def test_retry_after_as_http_date(clock: FakeClock, mocked: responses.RequestsMock):
    when = formatdate(clock.time() + 120, usegmt=True)
    mocked.get(URL, status=503, headers={"Retry-After": when})
    mocked.get(URL, json={"id": "u1"})

    make_api(clock).get_json("users/u1")

    assert clock.sleeps == [pytest.approx(120.0)]


def test_retry_after_is_waited_exactly_even_when_the_quota_resets_later(
    clock: FakeClock, mocked: responses.RequestsMock
):
    """A 1-second Retry-After is one second, not the minute the whole quota takes to refill."""
    mocked.get(
        URL,
        status=429,
        headers={"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "60"},
    )
    mocked.get(URL, json={"id": "u1"})

    make_api(clock).get_json("users/u1")

    assert clock.sleeps == [1.0]


def test_throttled_without_retry_after_waits_for_the_reset_when_nothing_remains(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.get(URL, status=429, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "31"})
    mocked.get(URL, json={"id": "u1"})

    make_api(clock).get_json("users/u1")

    assert clock.sleeps == [31.0]


def test_ratelimit_warning_on_a_success_slows_the_budget_without_pausing_it(
    clock: FakeClock, mocked: responses.RequestsMock
):
    """SharePoint's early warning (2 units left) leaves 2 to spend, then the refill paces."""
    budget = Budget("sharepoint", clock=clock, rate=60, per_s=60, burst=100)  # 1 RU a second
    mocked.get(
        URL,
        json={"id": "u1"},
        headers={"RateLimit-Limit": "100", "RateLimit-Remaining": "2", "RateLimit-Reset": "98"},
    )
    for _ in range(3):
        mocked.get(URL, json={"id": "u1"})
    api = make_api(clock, budget=budget)

    for _ in range(4):
        api.get_json("users/u1")

    assert budget.paused_s() == 0.0  # a warning is not a pause
    assert clock.sleeps == [pytest.approx(1.0)]  # two went at once, the last waited its unit


def test_missing_retry_after_backs_off_exponentially_with_bounded_jitter(
    clock: FakeClock, mocked: responses.RequestsMock
):
    for _ in range(6):
        mocked.get(URL, status=503)

    with pytest.raises(ThrottledError) as caught:
        make_api(clock, max_attempts=6, backoff_base_s=1.0, backoff_cap_s=4.0).get_json("users/u1")

    assert len(mocked.calls) == 6
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, then held at the cap
    assert len(clock.sleeps) == len(ceilings)
    for wait, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling
    assert caught.value.transient is True
    assert caught.value.retry_after is None


def test_throttled_error_after_retries_carries_retry_after(
    clock: FakeClock, mocked: responses.RequestsMock
):
    for _ in range(3):
        mocked.get(URL, status=429, headers={"Retry-After": "2"})

    with pytest.raises(ThrottledError) as caught:
        make_api(clock, max_attempts=3).get_json("users/u1")

    assert caught.value.status == 429
    assert caught.value.retry_after == 2.0
    assert clock.sleeps == [2.0, 2.0]


def test_wait_longer_than_max_wait_is_left_to_the_caller(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.get(URL, status=429, headers={"Retry-After": "3600"})
    budget = Budget("graph", clock=clock)

    with pytest.raises(ThrottledError) as caught:
        make_api(clock, budget=budget, max_wait_s=300).get_json("users/u1")

    assert caught.value.retry_after == 3600.0
    assert len(mocked.calls) == 1
    assert budget.blocked_until == pytest.approx(clock.monotonic() + 3600)


def test_503_then_200(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.get(URL, status=503)
    mocked.get(URL, json={"id": "u1"})

    assert make_api(clock).get_json("users/u1")["id"] == "u1"
    assert len(mocked.calls) == 2


def test_401_is_not_retried(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.get(URL, status=401, json={"error": {"code": "InvalidAuthenticationToken"}})

    with pytest.raises(Unauthorized) as caught:
        make_api(clock).get_json("users/u1")

    assert len(mocked.calls) == 1
    assert caught.value.transient is False
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequest), (403, Unauthorized), (404, NotFound), (412, PreconditionFailed)],
)
def test_4xx_raise_typed_errors_at_once_without_secrets(
    clock: FakeClock, mocked: responses.RequestsMock, status: int, error: type[Exception]
):
    mocked.get(
        URL,
        status=status,
        headers={"request-id": "req-123"},
        json={"error": {"code": "itemNotFound", "message": "The resource could not be found."}},
    )

    with pytest.raises(error) as caught:
        make_api(clock).get_json("users/u1")

    exc = caught.value
    assert len(mocked.calls) == 1
    assert exc.status == status  # type: ignore[attr-defined]
    assert exc.request_id == "req-123"  # type: ignore[attr-defined]
    assert "The resource could not be found." in str(exc)
    assert SECRET_TOKEN not in str(exc) and "Bearer" not in str(exc)


def test_500_raises_server_error_without_retry(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.post(f"{BASE}/users/u1/sendMail", status=500, body="oops")

    with pytest.raises(ServerError) as caught:
        make_api(clock).request("POST", "users/u1/sendMail", json={})

    assert caught.value.transient is True
    assert len(mocked.calls) == 1


def test_get_timeouts_are_retried_then_transport_error(
    clock: FakeClock, mocked: responses.RequestsMock
):
    for _ in range(3):
        mocked.get(URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(TransportError) as caught:
        make_api(clock, max_attempts=3).get_json("users/u1")

    assert len(mocked.calls) == 3
    assert caught.value.transient is True
    assert len(clock.sleeps) == 2


def test_post_read_timeout_is_not_repeated(clock: FakeClock, mocked: responses.RequestsMock):
    mocked.post(f"{BASE}/sites/s/lists/l/items", body=requests.ReadTimeout("read timed out"))

    with pytest.raises(TransportError):
        make_api(clock).request("POST", "sites/s/lists/l/items", json={"fields": {}})

    assert len(mocked.calls) == 1


def test_post_connect_timeout_is_repeated_because_nothing_was_sent(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.post(f"{BASE}/users/u1/sendMail", body=requests.ConnectTimeout("connect timed out"))
    mocked.post(f"{BASE}/users/u1/sendMail", status=202)

    make_api(clock).request("POST", "users/u1/sendMail", json={})

    assert len(mocked.calls) == 2


def test_next_link_to_another_host_is_refused(clock: FakeClock):
    with pytest.raises(M365Error, match="refusing to send our token"):
        make_api(clock).url("https://evil.example/v1.0/sites")


def test_throttled_budget_holds_back_another_thread(
    clock: FakeClock, mocked: responses.RequestsMock
):
    """No request to a throttled budget leaves before its Retry-After has passed."""
    budgets = Budgets(Limits(), clock)
    sent_at: list[float] = []

    def record(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        sent_at.append(clock.monotonic())
        if len(sent_at) == 1:
            return 429, {"Retry-After": "30"}, "{}"
        return 200, {}, '{"id": "u1"}'

    mocked.add_callback(responses.GET, URL, callback=record)
    first = make_api(clock, budget=budgets.sharepoint, max_attempts=1)
    second = make_api(clock, budget=budgets.sharepoint)

    with pytest.raises(ThrottledError):
        first.get_json("users/u1")
    throttled_at = sent_at[0]
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(second.get_json("users/u1")))
    worker.start()
    worker.join(timeout=10)

    assert outcome == [{"id": "u1"}]
    assert sent_at[1] >= throttled_at + 30


def test_a_throttled_conversation_holds_the_whole_bot_back(clock: FakeClock):
    budgets = Budgets(Limits(), clock)

    budgets.conversation("a:1").pause_for(3)

    assert budgets.bot.paused_s() == pytest.approx(3)
    assert budgets.conversation("b:2").paused_s() == pytest.approx(3)


def test_a_conversation_gets_its_burst_then_its_thirty_second_rate(clock: FakeClock):
    """Teams allows 7 a second and 60 in 30 per conversation: 5 at once (less a quarter
    second's refill, kept back for arrival jitter), then 55 in 30 s."""
    budgets = Budgets(Limits(), clock)
    conversation = budgets.conversation("a:1")

    for _ in range(6):
        with conversation.spend():
            pass

    assert clock.sleeps == [pytest.approx(0.25), pytest.approx(30 / 55)]


def test_sharepoint_defaults_are_the_smallest_tenant_band(clock: FakeClock):
    """The minute's 1,250 units may go at once (less a quarter second's refill, kept back
    for arrival jitter); after them the budget refills at 1,250 a minute."""
    budgets = Budgets(Limits(), clock)
    per_second = 1250 / 60

    with budgets.sharepoint.spend(1244):
        pass
    assert clock.sleeps == []
    with budgets.sharepoint.spend(per_second):
        pass

    assert clock.sleeps == [pytest.approx(1 - (1250 - 0.25 * per_second - 1244) / per_second)]


def test_token_bucket_spaces_requests_by_cost(clock: FakeClock):
    budget = Budget("sharepoint", clock=clock, rate=60, per_s=60, burst=4)  # 1 RU a second

    for _ in range(3):
        with budget.spend(2):
            pass

    assert clock.sleeps == [pytest.approx(2.0)]


def test_mailbox_budget_allows_four_requests_in_flight(mocked: responses.RequestsMock):
    budgets = Budgets(Limits(mailbox_concurrency=4))
    api = make_api(FakeClock())
    lock = threading.Condition()
    state = {"in_flight": 0, "max": 0}
    release = threading.Event()

    def slow(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with lock:
            state["in_flight"] += 1
            state["max"] = max(state["max"], state["in_flight"])
            lock.notify_all()
        release.wait(timeout=10)
        with lock:
            state["in_flight"] -= 1
        return 202, {}, ""

    mocked.add_callback(responses.POST, f"{BASE}/users/svc/sendMail", callback=slow)

    def send() -> None:
        api.request("POST", "users/svc/sendMail", json={}, budget=budgets.mailbox("SVC"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    with lock:
        assert lock.wait_for(lambda: state["in_flight"] == 4, timeout=10)
    release.set()
    for thread in threads:
        thread.join(timeout=10)

    assert state["max"] == 4
    assert len(mocked.calls) == 8


def test_budget_rejects_nonsense_numbers(clock: FakeClock):
    with pytest.raises(ValueError, match="positive"):
        Budget("x", clock=clock, rate=0)
    with pytest.raises(ValueError, match="concurrency"):
        Budget("x", clock=clock, concurrency=0)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
