"""Responses, and the error bodies the sandbox gives, shaped like the real services' ones.

Error bodies emulated (status, code: message). Marked (approx.) where the real
wording was not found in a primary source; clients should branch on status and
code, never on message text.

Microsoft Graph (``{"error": {"code", "message", "innerError": {date, request-id,
client-request-id}}}``):
  401 InvalidAuthenticationToken: "Access token is empty." /
      "Lifetime validation failed, the token is expired." /
      "Access token validation failure. Invalid audience." /
      "Access token validation failure." (bad signature, wrong issuer, garbage)
  403 accessDenied: "Either scp or roles claim need to be present in the token." (no roles);
      otherwise, when the app lacks the role: accessDenied "Access denied" (sites),
      Authorization_RequestDenied "Insufficient privileges to complete the operation."
      (users), ErrorAccessDenied "Access is denied. Check credentials and try again." (mail)
  400 invalidRequest: "Field 'X' cannot be referenced in filter or orderby as it is
      not indexed. Provide the 'Prefer: HonorNonIndexedQueriesWarningMayFailRandomly'
      header to allow this."  (facts §1.2)
  400 invalidRequest: "Invalid filter clause" (approx.; unparsable $filter)
  400 invalidRequest: "Field 'X' is not recognized" (approx.; write to unknown column)
  400 invalidRequest: "Invalid request" (approx.; body not JSON / wrong value type)
  404 itemNotFound: "Requested site could not be found" / "The resource could not be
      found." (list or item)
  404 Request_ResourceNotFound: "Resource 'X' does not exist or one of its queried
      reference-property objects are not present." (user, manager)
  404 ErrorInvalidUser: "The requested user 'X' is invalid." (sendMail from unknown mailbox)
  400 ErrorInvalidRecipients: "At least one recipient is required, but none were found."
  400 BadRequest: "Unable to read JSON request payload. Please ensure Content-Type header is
      set and payload is of valid JSON format."
  400 BadRequest: "Resource not found for the segment 'X'." (unknown path segment)
  405 Request_BadRequest (approx.): method not allowed on that resource
  409 nameAlreadyExists (approx.): list or column name taken
  412 preconditionFailed: "The provided eTag does not match the current eTag of the
      item." (approx.)
  429 activityLimitReached: "The request has been throttled" (SharePoint budget) /
      ApplicationThrottled: "Application is over its MailboxConcurrency limit." /
      TooManyRequests: "Please retry again later." (others); always with Retry-After.
  503 serviceNotAvailable: "The service is temporarily unavailable." (fault injection)
  $batch envelope 400 BadRequest for: body not JSON, no requests array, more than 20
      requests, duplicate ids (approx. wording); a part with a bad url or a body without
      Content-Type gets its own 400; a part whose dependsOn failed gets 424.
Entra token endpoint (``{"error", "error_description", "error_codes", ...}``):
  401 invalid_client AADSTS7000215 (wrong secret), AADSTS700027 (assertion not valid)
  400 unauthorized_client AADSTS700016 (unknown client id)
  400 invalid_request AADSTS90002 (unknown tenant), AADSTS900144 (missing parameter)
  400 invalid_scope AADSTS1002012 (scope without /.default)
  400 unsupported_grant_type AADSTS70003
Bot Connector:
  401 ``{"message": "Authorization has been denied for this request."}``
  400 BadArgument, 404 ConversationNotFound / ActivityNotFound (approx. messages)
Power BI (``{"error": {"code", "message"}}``):
  401 TokenExpired / InvalidToken (approx.), 404 ItemNotFound (approx.)
  400 "Invalid dataset refresh request. Number of refresh requests in last 24 hours
      exceeded limit" (field reports; code UNCONFIRMED, we use InvalidRequest)
  429 ``{"message": "You have exceeded the amount of requests allowed in the current
      time frame and further requests will fail. Retry in N seconds."}``
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from m365perf.sandbox.store import iso
from m365perf.sandbox.throttle import family

JSON = "application/json"
GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"  # noqa: E501


@dataclass
class Reply:
    """A response before it is put on the wire, so $batch can embed it in its envelope."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = JSON

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str) and self.media_type != JSON:
            return self.body.encode()
        return json.dumps(self.body).encode()

    def response(self) -> Response:
        headers = dict(self.headers)
        if self.body is None:
            return Response(status_code=self.status, headers=headers)
        return Response(
            content=self.encoded(),
            status_code=self.status,
            headers=headers,
            media_type=self.media_type,
        )


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": iso(),
                "request-id": request_id,
                "client-request-id": request_id,
            },
        }
    }
    all_headers = {"request-id": request_id, "client-request-id": request_id}
    all_headers.update(headers or {})
    return Reply(status, body, all_headers)


def not_indexed(field_name: str) -> Reply:
    return graph_error(
        400,
        "invalidRequest",
        f"Field '{field_name}' cannot be referenced in filter or orderby as it is not indexed. "
        "Provide the 'Prefer: HonorNonIndexedQueriesWarningMayFailRandomly' header to allow this.",
    )


def item_not_found(message: str = "The resource could not be found.") -> Reply:
    return graph_error(404, "itemNotFound", message)


def resource_not_found(name: str) -> Reply:
    return graph_error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{name}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def invalid_request(message: str = "Invalid request") -> Reply:
    return graph_error(400, "invalidRequest", message)


def aad_error(status: int, error: str, code: int, description: str) -> Reply:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = iso().replace("T", " ").replace("Z", "Z")
    return Reply(
        status,
        {
            "error": error,
            "error_description": (
                f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} "
                f"Timestamp: {stamp}"
            ),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
        {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


def bot_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def bot_unauthorized() -> Reply:
    return Reply(401, {"message": "Authorization has been denied for this request."})


def powerbi_error(status: int, code: str, message: str) -> Reply:
    request_id = str(uuid.uuid4())
    return Reply(status, {"error": {"code": code, "message": message}}, {"RequestId": request_id})


def unauthorized(kind: str, problem: str) -> Reply:
    if kind == "bot":
        return bot_unauthorized()
    if kind == "powerbi":
        code = "TokenExpired" if problem == "expired" else "InvalidToken"
        message = {
            "expired": "Access token has expired, resubmit with a new access token",
            "missing": "Access token is missing",
            "audience": "Access token audience is not valid for Power BI",
        }.get(problem, "Access token is not valid")
        reply = powerbi_error(401, code, message)
        reply.headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
        return reply
    message = {
        "missing": "Access token is empty.",
        "expired": "Lifetime validation failed, the token is expired.",
        "audience": "Access token validation failure. Invalid audience.",
    }.get(problem, "Access token validation failure.")
    reply = graph_error(401, "InvalidAuthenticationToken", message)
    reply.headers["WWW-Authenticate"] = (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
        'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
    )
    return reply


def throttled(kind: str, budget: str, retry_after: int, *, concurrency: bool = False) -> Reply:
    headers = {"Retry-After": str(retry_after)}
    if kind == "powerbi":
        return Reply(
            429,
            {
                "message": "You have exceeded the amount of requests allowed in the current "
                "time frame and further requests will fail. Retry in "
                f"{retry_after} seconds."
            },
            headers,
        )
    if kind == "bot":
        reply = bot_error(429, "TooManyRequests", "Too many requests")
        reply.headers.update(headers)
        return reply
    if family(budget) == "sharepoint":
        reply = graph_error(429, "activityLimitReached", "The request has been throttled", headers)
        reply.body["error"]["innerError"]["code"] = "throttledRequest"
        return reply
    if concurrency:
        return graph_error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            headers,
        )
    return graph_error(429, "TooManyRequests", "Please retry again later.", headers)


def unavailable(kind: str, retry_after: int) -> Reply:
    headers = {"Retry-After": str(retry_after)}
    if kind == "powerbi":
        reply = powerbi_error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
    elif kind == "bot":
        reply = bot_error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
    else:
        return graph_error(
            503, "serviceNotAvailable", "The service is temporarily unavailable.", headers
        )
    reply.headers.update(headers)
    return reply
