"""GitHub's published OpenAPI description (npm @octokit/openapi), as the judge of the fake GitHub's traffic.

Every request the fake receives and every response it sends is checked against its operation with openapi-core
(path, method, parameters, body, status code, response body). Requests are checked strictly: a field the
description does not declare is an error, so a misspelt field in the forge's requests fails a test. The
description is loaded once per test process (about half a second) and only the operations used are resolved.

Two adjustments, both for what GitHub really sends and its description does not say:

- an enum in a ``nullable`` schema gets ``null`` added: GitHub answers ``null`` (a check run's ``conclusion``
  while it runs, an open issue's ``state_reason``), and openapi-core keeps the enum strict;
- a rate-limit answer (403 or 429 with ``retry-after`` or ``x-ratelimit-*`` headers) may come from any
  operation (GitHub's "Rate limits" documentation) though most operations do not list it: one that is not
  listed is checked against the ``basic-error`` schema and must carry those headers.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

HOST = "https://api.github.com"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "github_api"
DESCRIPTION = PACKAGE_DIR / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"
FIXTURES = PACKAGE_DIR / "node_modules" / "@octokit" / "fixtures" / "scenarios" / "api.github.com"
SETUP_HINT = (
    "GitHub's OpenAPI description (npm @octokit/openapi) is not installed in tests/github_api/node_modules: "
    "run `make github-api` (it runs `npm ci` in tests/github_api), or `make test`, which does it first"
)


class DescriptionMissingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Operation:
    operation_id: str
    template: str
    variables: dict[str, str]


class GitHubDescription:
    """The description, narrowed to the paths of ``operations`` (the whole of it when None).

    Narrowing is for speed: openapi-core looks the path up among all of them several times per request (about
    1,000 paths, 10 ms each time); ``find`` still knows every path, to name an undescribed request.
    """

    def __init__(self, spec: dict[str, Any], operations: frozenset[str] | None = None) -> None:
        self.spec = spec
        paths = {
            template: item
            for template, item in spec["paths"].items()
            if operations is None
            or any(isinstance(op, dict) and op.get("operationId") in operations for op in item.values())
        }
        narrowed = {**spec, "paths": paths}
        self.requests = OpenAPI.from_dict(narrowed, config=_config(additional_properties_default_policy="forbid"))
        self.responses = OpenAPI.from_dict(narrowed, config=_config())  # and body-less requests
        self.finder = APICallPathFinder(self.responses.spec)
        self.everywhere = APICallPathFinder(OpenAPI.from_dict(spec, config=_config()).spec)
        self.rate_limit_body = OAS30Validator(spec["components"]["schemas"]["basic-error"])

    @property
    def version(self) -> str:
        return str(self.spec["info"]["version"])

    def find(self, method: str, path: str) -> Operation | None:
        """The operation of a request, or None when GitHub's description has no such path and method."""
        try:
            found = self.finder.find(method.lower(), HOST + path)
        except PathError:
            try:
                found = self.everywhere.find(method.lower(), HOST + path)
            except PathError:
                return None
        template = str(found.path.parts[-1])
        operation_id = self.spec["paths"][template][method.lower()]["operationId"]
        return Operation(str(operation_id), template, dict(found.path_result.variables))

    def example(self, name: str) -> Any:
        """A copy of one of the description's response examples (``components/examples``)."""
        return copy.deepcopy(self.spec["components"]["examples"][name]["value"])

    def request_problems(self, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> list[str]:
        request = _request(method, path, query, body)
        # The strict validator builds a validator class per schema it checks (slow); only a body can hold a
        # field the description lacks, so a request without one gets the ordinary validator.
        validator = self.requests if body else self.responses
        return [f"{method} {path}: request: {_say(e)}" for e in validator.iter_request_errors(request)]

    def response_problems(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        request_body: bytes,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> list[str]:
        where = f"{method} {path} -> {status}"
        operation = self.find(method, path)
        listed = operation is not None and str(status) in self._responses(method, operation)
        if operation is not None and not listed and status in (403, 429):
            return [f"{where}: {p}" for p in self._rate_limit_problems(headers, body)]
        request = _request(method, path, query, request_body)
        content_type = headers.get("Content-Type", "application/json").split(";")[0]
        response = MockResponse(body, status_code=status, headers=dict(headers), content_type=content_type)
        return [f"{where}: response: {_say(e)}" for e in self.responses.iter_response_errors(request, response)]

    def _responses(self, method: str, operation: Operation) -> dict[str, Any]:
        described: dict[str, Any] = self.spec["paths"][operation.template][method.lower()]["responses"]
        return described

    def _rate_limit_problems(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        names = {k.lower() for k in headers}
        problems = (
            [] if "retry-after" in names or "x-ratelimit-reset" in names else ["a rate limit without its headers"]
        )
        try:
            problems += [f"rate-limit body: {e.message}" for e in self.rate_limit_body.iter_errors(json.loads(body))]
        except ValueError:
            problems.append("rate-limit body is not JSON")
        return problems


def _config(**options: Any) -> Config:
    # None skips validating the description itself (GitHub publishes it valid; it would take minutes); openapi-core
    # documents None for this, its type hints do not.
    return Config(spec_validator_cls=None, **options)  # type: ignore[arg-type]


def _request(method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> MockRequest:
    return MockRequest(HOST, method.lower(), path, args=dict(query), data=body or None, content_type="application/json")


def _say(error: BaseException) -> str:
    """The error and the schema errors openapi-core keeps in its causes."""
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None:
        parts += [f"{list(e.absolute_path)}: {e.message}" for e in getattr(cause, "schema_errors", ())]
        cause = cause.__cause__
    return " | ".join(parts)


def _nullable_enums_take_null(node: Any) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            enum = item.get("enum")
            if item.get("nullable") is True and isinstance(enum, list) and None not in enum:
                enum.append(None)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@functools.cache
def load_description(path: Path = DESCRIPTION) -> dict[str, Any]:
    """The description, read once per process; DescriptionMissingError (with the setup step) when not installed."""
    if not path.is_file():
        raise DescriptionMissingError(f"{SETUP_HINT} (looked for {path})")
    spec: dict[str, Any] = json.loads(path.read_bytes())
    _nullable_enums_take_null(spec)
    return spec


@functools.cache
def github_description(operations: frozenset[str] | None = None, path: Path = DESCRIPTION) -> GitHubDescription:
    return GitHubDescription(load_description(path), operations)


def recorded_cases(scenario: str) -> Iterator[dict[str, Any]]:
    """The recorded requests and responses of one @octokit/fixtures scenario (normalized)."""
    yield from json.loads((FIXTURES / scenario / "normalized-fixture.json").read_text())
