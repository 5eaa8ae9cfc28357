"""GitHub's REST API over httpx for the github forge: authentication, rate-limit waits, pagination, errors.

Rate limits (GitHub's REST documentation, "Rate limits"): a 429, or a 403 that carries ``retry-after`` or
``x-ratelimit-remaining: 0``, means "wait, then send the same request again". The wait is ``retry-after``
seconds when given, else until ``x-ratelimit-reset`` (epoch seconds), else one minute; it goes through the
injected ``sleep`` so tests never sleep for real, and it is bounded: at most ``rate_limit_retries`` retries, and
no single wait longer than ``max_rate_wait_s`` (a queue must not stall for an hour on a primary limit).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from conveyor.domain.errors import ConveyorError

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TOKEN_VARIABLES = ("CONVEYOR_GITHUB_TOKEN", "GITHUB_TOKEN")
SECONDARY_LIMIT_WAIT_S = 60.0


class GitHubError(ConveyorError):
    """GitHub answered with an error (``status``) or could not be reached (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class GitHubRateLimitError(GitHubError):
    """Still rate limited after the bounded retries, or asked to wait longer than the forge will."""


class GitHubTokenMissingError(GitHubError):
    """No token was given and none is in the environment."""


def token_from_env(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    for name in TOKEN_VARIABLES:
        if env.get(name, "").strip():
            return env[name].strip()
    raise GitHubTokenMissingError(f"no GitHub token: set {' or '.join(TOKEN_VARIABLES)}, or pass one to the forge")


def error_message(response: httpx.Response) -> str:
    """GitHub's ``message`` and its validation ``errors`` in one line (the raw text when the body is not JSON)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(body.get("message", ""))]
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            parts.append(
                str(item.get("message") or "/".join(str(item.get(k, "")) for k in ("resource", "field", "code")))
            )
        else:
            parts.append(str(item))
    return "; ".join(p for p in parts if p)


class GitHubApi:
    """One repository's REST API: ``path`` arguments are relative to ``/repos/{owner}/{name}``."""

    def __init__(
        self,
        *,
        owner: str,
        name: str,
        token: str,
        api_url: str = API_URL,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        rate_limit_retries: int = 3,
        max_rate_wait_s: float = 900.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.owner = owner
        self.name = name
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.rate_limit_retries = rate_limit_retries
        self.max_rate_wait_s = max_rate_wait_s
        self.client = httpx.Client(
            base_url=api_url.rstrip("/"),
            transport=transport,
            timeout=timeout_s,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "conveyor",
            },
        )

    def close(self) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        return f"/repos/{self.owner}/{self.name}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        allow: tuple[int, ...] = (),
        absolute: bool = False,
    ) -> httpx.Response:
        """Send one request (retried while rate limited); a status outside 2xx and ``allow`` raises GitHubError."""
        target = path if absolute else self.url(path)
        for attempt in range(self.rate_limit_retries + 1):
            try:
                response = self.client.request(method, target, json=json, params=params)
            except httpx.HTTPError as exc:
                raise GitHubError(f"GitHub API {method} {target}: {type(exc).__name__}: {exc}") from exc
            wait = self._rate_limit_wait(response)
            if wait is None:
                break
            if attempt == self.rate_limit_retries or wait > self.max_rate_wait_s:
                raise GitHubRateLimitError(
                    f"GitHub API {method} {target}: rate limited ({response.status_code}: {error_message(response)}); "
                    f"gave up after {attempt} retries (next wait {wait:.0f} s)",
                    status=response.status_code,
                )
            self.sleep(wait)
        if response.is_success or response.status_code in allow:
            return response
        raise GitHubError(
            f"GitHub API {method} {target}: {response.status_code} {error_message(response)}",
            status=response.status_code,
            body=response.text,
        )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def paginate(
        self, path: str, params: Mapping[str, str | int] | None = None, *, key: str | None = None
    ) -> Iterator[Any]:
        """Every item of a list endpoint, following the ``Link: rel="next"`` pages (``key``: the list's field)."""
        response = self.request("GET", path, params={**(params or {}), "per_page": 100})
        while True:
            body = response.json()
            yield from body[key] if key is not None else body
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            response = self.request("GET", following, absolute=True)

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again, or None when the response is not a rate limit."""
        headers = response.headers
        limited = response.status_code == 429 or (
            response.status_code == 403 and ("retry-after" in headers or headers.get("x-ratelimit-remaining") == "0")
        )
        if not limited:
            return None
        if headers.get("retry-after", "").strip().isdigit():
            return max(1.0, float(headers["retry-after"]))
        if headers.get("x-ratelimit-reset", "").strip().isdigit():
            return max(1.0, float(headers["x-ratelimit-reset"]) - self.wall_clock() + 1.0)
        return SECONDARY_LIMIT_WAIT_S
