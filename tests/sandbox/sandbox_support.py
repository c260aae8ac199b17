"""Helpers shared by the sandbox tests: bearer-token plumbing for one sandbox."""

from __future__ import annotations

from typing import Any

import requests

from m365perf.sandbox.testing import RunningSandbox

GRAPH = "https://graph.microsoft.com/.default"
POWERBI = "https://analysis.windows.net/powerbi/api/.default"
BOT = "https://api.botframework.com/.default"


class Wire:
    """Bearer-token plumbing for one sandbox, so tests read as the calls they make."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.base = sandbox.base_url
        self._tokens: dict[str, str] = {}
        self.http = requests.Session()
        self._health: dict[str, Any] | None = None

    def token(self, scope: str = GRAPH) -> str:
        if scope not in self._tokens:
            self._tokens[scope] = self.sandbox.token(scope)
        return self._tokens[scope]

    def _call(self, method: str, url: str, scope: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(scope)}", **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, timeout=30, **kwargs)

    def graph(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base}/v1.0{path}"
        return self._call(method, url, GRAPH, **kwargs)

    def powerbi(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._call(method, f"{self.base}/powerbi/v1.0/myorg{path}", POWERBI, **kwargs)

    def bot(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._call(method, f"{self.base}/botframework/v3{path}", BOT, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base}/_sandbox{path}", timeout=60, **kwargs)

    def health(self) -> dict[str, Any]:
        if self._health is None:
            self._health = self.admin("GET", "/health").json()
        return self._health

    def list_path(self, title: str) -> str:
        return f"/sites/{self.health()['site_id']}/lists/{self.health()['lists'][title]}"

    def requests_log(self, **params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.admin("GET", "/requests", params=params).json()["value"]
        return rows

    def user(self, upn: str) -> dict[str, Any]:
        users = self.admin("GET", "/users").json()["value"]
        return next(u for u in users if u["upn"] == upn)
