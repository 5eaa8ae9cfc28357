"""Benchmark of the agent layer (issue 3, "Benchmark (bench/agent_overhead)"). Run it from the repository root::

    uv run --no-sync python -m bench.agent_overhead [--calls 200] [--warmup 20]

It prints three things, all measured in this one process and run against the local Anthropic-compatible stub
(tests/support/anthropic_stub.py) on 127.0.0.1, which answers at once:

1. **Per-call overhead** of Conveyor's agent layer in milliseconds, next to the raw SDK's: judgment calls (one
   request, a small text reply) through (a) ``client.messages.create`` on one reused client, (b)
   ``AnthropicBackend.run``, (c) ``RecordingBackend(AnthropicBackend)`` with replay off and (d) the backend
   production assembles (``services.agents.agent_backend``: RecordingBackend with a ReplayStore; every request
   is distinct, so every call misses the replay store, reaches the stub, and is stored). The variants are
   interleaved call by call. The stub's own time is measured server-side around its whole request handling and
   subtracted per call; overhead = net time of the variant - net time of the raw SDK.
2. **Cache share** over a 10-turn implementer conversation (9 read_file/list_files/search turns, then finish) in
   a scratch git repository, computed by the independent checker (bench/cache_checker.py) from the request
   bodies the backend actually sent and their arrival times, labelled "simulated", next to the share from the
   stub's own ``usage`` report. Goal (issue 3): at least 70 % of input tokens read from the cache after the
   first request.
3. **Memory**: RSS before and after (``resource.getrusage``: peak RSS; /proc/self/statm: current RSS).

See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic

from bench.cache_checker import CacheReport, check_requests
from conveyor.adapters.agents.anthropic_backend import AnthropicBackend
from conveyor.adapters.agents.recording import RecordingBackend
from conveyor.adapters.sandbox.local import LocalSandbox
from conveyor.domain.agent import AgentRequest, AgentRole, ToolName
from conveyor.domain.build_spec import AgentsSpec
from conveyor.domain.models import ModelTable
from conveyor.domain.ticket import ModelTier
from conveyor.ports import AgentBackend
from conveyor.services.agents import agent_backend
from conveyor.settings import Settings
from tests.support.anthropic_stub import AnthropicStub, RecordedRequest, Reply
from tests.support.anthropic_stub import _RequestHandler as StubConnection

API_KEY = "sk-ant-bench-0000000000000000"
GOAL = 0.70
TURNS = 10
SYSTEM = "You review code changes for correctness and security. Answer briefly."
REPLY_TEXT = "Looks fine: no blocking issues."
MINIMA_FOR_SENSITIVITY = (512, 1024, 2048, 4096)


# -- the stub, with its own time measured --------------------------------------------------------------------------


class TimedStub(AnthropicStub):
    """The stub server, recording per request id the server-side time of its whole handling.

    Measured with ``time.perf_counter_ns`` around ``AnthropicStub._handle``: reading the body, JSON parsing,
    validation, token counting and cache accounting, the reply handler, rendering and writing the response.
    Not measured: the HTTP server's parsing of the request line and headers (stdlib), which every variant pays
    alike and which therefore cancels out of the overhead figures.
    """

    def __init__(self) -> None:
        super().__init__()
        self.server_ns: dict[str, int] = {}
        self._current: dict[int, str] = {}
        self._times_lock = threading.Lock()

    def __enter__(self) -> TimedStub:
        self.start()
        return self

    def _handle(self, h: StubConnection) -> None:
        started = time.perf_counter_ns()
        try:
            super()._handle(h)
        finally:
            elapsed = time.perf_counter_ns() - started
            with self._times_lock:
                request_id = self._current.pop(id(h), None)
                if request_id is not None:
                    self.server_ns[request_id] = elapsed

    def _messages(self, h: StubConnection, record: RecordedRequest) -> None:
        with self._times_lock:
            self._current[id(h)] = record.request_id
        super()._messages(h, record)

    def wait_for_times(self, request_ids: Sequence[str], timeout_s: float = 5.0) -> list[int]:
        """The server times of these requests (each is recorded just after its response was written)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._times_lock:
                missing = [r for r in request_ids if r not in self.server_ns]
                if not missing:
                    return [self.server_ns[r] for r in request_ids]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no server time recorded for {missing[:3]}")
            time.sleep(0.001)


# -- part 1: per-call overhead -------------------------------------------------------------------------------------


def judgment(i: int) -> AgentRequest:
    """The i-th judgment call: the same for every variant, distinct across calls (so replay never hits)."""
    return AgentRequest(
        role=AgentRole.REVIEWER,
        run_id="RUN-20261121-1000",
        ticket_id="BENCH-001",
        stage="reviewing",
        prompt_version="bench-1",
        system=SYSTEM,
        inputs={"messages": [{"role": "user", "content": f"Review this diff (call {i}):\n+total = price * {i}\n"}]},
    )


@dataclass
class Variant:
    name: str
    call: Callable[[int], None]
    wall_ns: list[int] = field(default_factory=list)
    server_ns: list[int] = field(default_factory=list)

    def net_ms(self) -> list[float]:
        return [(w - s) / 1e6 for w, s in zip(self.wall_ns, self.server_ns, strict=True)]


def _backend_call(backend: AgentBackend) -> Callable[[int], None]:
    def call(i: int) -> None:
        result = backend.run(judgment(i))
        if not result.ok or result.text != REPLY_TEXT or result.replayed:
            raise RuntimeError(f"{backend.name}: unexpected result {result.status} {result.error_detail!r}")

    return call


def _raw_call(client: anthropic.Anthropic, model: str) -> Callable[[int], None]:
    def call(i: int) -> None:
        request = judgment(i)
        response = client.messages.create(
            model=model,
            max_tokens=request.limits.max_output_tokens,
            system=[{"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}],
            messages=request.inputs["messages"],
        )
        block = response.content[0]
        if block.type != "text" or block.text != REPLY_TEXT:
            raise RuntimeError(f"raw SDK: unexpected reply {response.content!r}")

    return call


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# bench\n")
    _git(path, "add", "README.md")
    _git(path, "commit", "-q", "-m", "initial")
    return path


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def build_variants(stub: TimedStub, tmp: Path, models: ModelTable) -> tuple[list[Variant], list[Any]]:
    """The four variants, and what must be closed afterwards (SDK clients)."""
    model = models.spec(ModelTier.NORMAL).model
    raw_client = anthropic.Anthropic(api_key=API_KEY, base_url=stub.url, max_retries=4, timeout=600.0)

    def bare() -> AnthropicBackend:
        return AnthropicBackend(api_key=API_KEY, base_url=stub.url, models=models, sandbox=LocalSandbox())

    plain = bare()
    wrapped_inner = bare()
    wrapped = RecordingBackend(wrapped_inner, repo_root=_git_repo(tmp / "recording-repo"), replay=None)
    settings = Settings.model_validate(
        {"ANTHROPIC_API_KEY": API_KEY, "agents": AgentsSpec(backend="anthropic", sandbox="none")}
    )
    production = agent_backend(_git_repo(tmp / "production-repo"), settings, base_url=stub.url)
    if not isinstance(production, RecordingBackend) or not isinstance(production.inner, AnthropicBackend):
        raise RuntimeError(f"production assembled {production!r}, not RecordingBackend(AnthropicBackend)")
    variants = [
        Variant("raw SDK client.messages.create", _raw_call(raw_client, model)),
        Variant("AnthropicBackend.run", _backend_call(plain)),
        Variant("RecordingBackend(AnthropicBackend), replay off", _backend_call(wrapped)),
        Variant("production: agent_backend() (+ ReplayStore)", _backend_call(production)),
    ]
    return variants, [raw_client, plain.client, wrapped_inner.client, production.inner.client]


def measure_overhead(stub: TimedStub, variants: list[Variant], *, calls: int, warmup: int) -> None:
    """Interleaved calls (the order rotates each round); wall and server time of each measured call."""
    gc.collect()
    for i in range(warmup + calls):
        shift = i % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            before = len(stub.requests)
            started = time.perf_counter_ns()
            variant.call(i)
            wall = time.perf_counter_ns() - started
            ids = [r.request_id for r in stub.requests[before:]]
            if len(ids) != 1:
                raise RuntimeError(f"{variant.name}: call {i} sent {len(ids)} requests, not 1")
            if i >= warmup:
                variant.wall_ns.append(wall)
                variant.server_ns.append(sum(stub.wait_for_times(ids)))


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def print_overhead(variants: list[Variant], calls: int, warmup: int) -> None:
    raw = variants[0].net_ms()
    raw_med, raw_p95 = statistics.median(raw), p95(raw)
    print(f"1. Per-call time, ms: {calls} judgment calls per variant after {warmup} warm-up calls, interleaved")
    print("   wall = client-side time of the call; stub = the stub's server-side handling time of its request;")
    print("   net = wall - stub, per call; overhead = net(variant) - net(raw SDK), on medians and on p95s")
    header = f"   {'variant':<48} {'wall med':>8} {'wall p95':>8} {'stub med':>8} {'net med':>8} {'net p95':>8}"
    print(header + f" {'overhead med':>12} {'overhead p95':>12}")
    for variant in variants:
        wall = [w / 1e6 for w in variant.wall_ns]
        server = [s / 1e6 for s in variant.server_ns]
        net = variant.net_ms()
        row = f"   {variant.name:<48} {statistics.median(wall):8.3f} {p95(wall):8.3f} {statistics.median(server):8.3f}"
        row += f" {statistics.median(net):8.3f} {p95(net):8.3f}"
        if variant is variants[0]:
            row += f" {'(baseline)':>12} {'':>12}"
        else:
            row += f" {statistics.median(net) - raw_med:+12.3f} {p95(net) - raw_p95:+12.3f}"
        print(row)
    for variant in variants[1:]:
        ratio = statistics.median(variant.net_ms()) / raw_med if raw_med else float("nan")
        print(f"   {variant.name}: {ratio:.2f}x the raw SDK's net median")


# -- part 2: cache share of a 10-turn implementer conversation -----------------------------------------------------


def _module(name: str, functions: int) -> str:
    lines = [f'"""The {name} module of the inventory service."""', "", "from __future__ import annotations", ""]
    for k in range(functions):
        lines += [
            "",
            f"def {name}_step_{k}(items: list[dict[str, float]], factor: float = {k + 1}.0) -> float:",
            f'    """Combine the {name} figures of step {k}: sum each item\'s price times the factor."""',
            "    total = 0.0",
            "    for item in items:",
            f"        if item.get('kind') == '{name}-{k}':",
            "            total += item['price'] * factor",
            "        else:",
            "            total += item['price']",
            "    return round(total, 2)",
        ]
    return "\n".join(lines) + "\n"


def scratch_project(path: Path) -> Path:
    """A small Python project in a fresh git repository: the implementer's worktree."""
    _git_repo(path)
    package = path / "inventory"
    package.mkdir()
    (package / "__init__.py").write_text('"""Inventory service."""\n')
    for name, functions in (("pricing", 9), ("models", 7), ("store", 8), ("report", 6), ("cli", 5)):
        (package / f"{name}.py").write_text(_module(name, functions))
    tests = path / "tests"
    tests.mkdir()
    (tests / "test_pricing.py").write_text(
        "from inventory.pricing import pricing_step_0\n\n\n"
        "def test_step_0() -> None:\n"
        "    assert pricing_step_0([{'kind': 'pricing-0', 'price': 2.0}]) == 2.0\n"
    )
    (path / "README.md").write_text(
        "# inventory\n\nA small inventory service: models, a store, pricing and reports.\n\n"
        "Run the tests with `python -m pytest -q`.\n"
    )
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "inventory service")
    return path


CONVERSATION: tuple[Reply, ...] = (
    Reply.tool_use("list_files", {}, text="Let me see the layout of the project first."),
    Reply.tool_use("read_file", {"path": "inventory/pricing.py"}, text="The ticket is about pricing."),
    Reply.tool_use("search", {"pattern": "def pricing_step_"}, text="Where are the pricing steps defined?"),
    Reply.tool_use("read_file", {"path": "inventory/models.py"}, text="Now the models it works on."),
    Reply.tool_use("read_file", {"path": "tests/test_pricing.py"}, text="And the existing test."),
    Reply.tool_use("search", {"pattern": "factor", "path": "inventory"}, text="How is the factor used?"),
    Reply.tool_use("read_file", {"path": "inventory/store.py"}, text="The store calls into pricing."),
    Reply.tool_use("list_files", {"path": "tests"}, text="Which tests exist?"),
    Reply.tool_use("read_file", {"path": "README.md"}, text="Finally the README."),
    Reply.tool_use(
        "finish",
        {"status": "success", "notes": "Read the pricing code; no change needed.", "commit_message": "bench"},
    ),
)


def by_turn(body: dict[str, Any]) -> Reply:
    """The reply for the turn this request is (assistant messages so far), as the backend tests do."""
    turn = sum(1 for message in body["messages"] if message["role"] == "assistant")
    return CONVERSATION[min(turn, len(CONVERSATION) - 1)]


@dataclass
class Conversation:
    requests: list[RecordedRequest]
    status: str
    error: str
    minimum: int
    model: str


def run_conversation(tmp: Path, models: ModelTable) -> Conversation:
    spec = models.spec(ModelTier.NORMAL)
    worktree = scratch_project(tmp / "worktree")
    with AnthropicStub() as stub:  # real clock: arrival times are time.monotonic()
        stub.set_min_cacheable_tokens(spec.model, spec.min_cacheable_tokens)
        stub.set_handler(by_turn)
        backend = AnthropicBackend(api_key=API_KEY, base_url=stub.url, models=models, sandbox=LocalSandbox())
        with backend.client:
            result = backend.run(
                AgentRequest(
                    role=AgentRole.IMPLEMENTER,
                    run_id="RUN-20261121-1000",
                    ticket_id="CV-042",
                    stage="implementing",
                    prompt_version="impl-1",
                    base_commit=_git(worktree, "rev-parse", "HEAD").strip(),
                    inputs={
                        "ticket": {
                            "title": "Apply the factor only to matching pricing items",
                            "description": "pricing_step_* multiplies every item; only matching kinds should be.",
                            "acceptance_criteria": ["non-matching items keep their price", "tests cover both cases"],
                            "touch_set": ["inventory/pricing.py", "tests/test_pricing.py"],
                        },
                        "quality_gates": [["python", "-m", "pytest", "-q"]],
                    },
                    tools=tuple(ToolName),
                    workdir=str(worktree),
                )
            )
        requests = stub.message_requests()
    detail = f"{result.error_kind}: {result.error_detail}" if result.error_kind else ""
    return Conversation(requests, result.status.value, detail, spec.min_cacheable_tokens, spec.model)


def stub_share(requests: Sequence[RecordedRequest], start: int = 1) -> float:
    read = total = 0
    for request in requests[start:]:
        usage: Mapping[str, Any] = request.usage or {}
        r = usage.get("cache_read_input_tokens") or 0
        read += r
        total += (usage.get("input_tokens") or 0) + r + (usage.get("cache_creation_input_tokens") or 0)
    return read / total if total else 0.0


def simulate(requests: Sequence[RecordedRequest], minimum: int) -> CacheReport:
    return check_requests([(r.body, r.at) for r in requests], min_cacheable_tokens=minimum)


def _pct(x: float) -> str:
    return f"{100 * x:5.1f} %"


def print_cache(conv: Conversation) -> None:
    report = simulate(conv.requests, conv.minimum)
    print()
    print(f"2. Cache share over a {TURNS}-turn implementer conversation (AnthropicBackend, {conv.model})")
    ended = conv.status + (f" ({conv.error})" if conv.error else "")
    print(f"   {len(conv.requests)} requests sent, call ended {ended}; minimum cacheable length {conv.minimum} tokens")
    print("   checker = bench/cache_checker.py over the request bodies sent and their arrival times (its own token")
    print("   estimate: ceil(chars/4) per block of canonical JSON); stub = the stub's usage report (its own count)")
    print(
        f"   {'req':>3} {'t (ms)':>7} {'blocks':>6} {'bps':>3} | {'total':>6} {'read':>6} {'written':>7} "
        f"{'uncached':>8} {'read %':>6} | {'stub in':>7} {'write':>6} {'read':>6} {'read %':>6}"
    )
    start_at = conv.requests[0].at if conv.requests else 0.0
    for verdict, request in zip(report.requests, conv.requests, strict=True):
        usage: Mapping[str, Any] = request.usage or {}
        s_in = usage.get("input_tokens") or 0
        s_write = usage.get("cache_creation_input_tokens") or 0
        s_read = usage.get("cache_read_input_tokens") or 0
        s_total = s_in + s_write + s_read
        print(
            f"   {verdict.index + 1:>3} {1000 * (verdict.at - start_at):7.1f} {verdict.blocks:>6} "
            f"{len(verdict.breakpoints):>3} | {verdict.total_tokens:>6} {verdict.read_tokens:>6} "
            f"{verdict.written_tokens:>7} {verdict.uncached_tokens:>8} {100 * verdict.read_share:6.1f} | "
            f"{s_in:>7} {s_write:>6} {s_read:>6} {100 * (s_read / s_total if s_total else 0):6.1f}"
        )
    total, read, written, uncached = report.totals(1)
    simulated = report.read_share(1)
    from_stub = stub_share(conv.requests, 1)
    split = f"{read} read + {written} written + {uncached} plain"
    print(f"   requests 2..{len(conv.requests)} (checker): {total} input tokens = {split}")
    print(f"   cache-read share after the first request, simulated (checker): {_pct(simulated)}")
    print(f"   cache-read share after the first request, stub usage report:  {_pct(from_stub)}")
    if report.errors:
        for bad in report.errors:
            print(f"   CHECKER ERROR on request {bad.index + 1}: {bad.error}")
    else:
        print(f"   checker errors: none (at most {max(len(v.breakpoints) for v in report.requests)} breakpoints used)")
    verdict_text = "MET" if simulated >= GOAL else f"NOT MET: short by {100 * (GOAL - simulated):.1f} points"
    print(f"   goal >= {100 * GOAL:.0f} % read from the cache after the first request (simulated): {verdict_text}")
    others = ", ".join(f"{m}: {_pct(simulate(conv.requests, m).read_share(1)).strip()}" for m in MINIMA_FOR_SENSITIVITY)
    print(f"   simulated share if the model's minimum were {others}")


# -- part 3: memory ------------------------------------------------------------------------------------------------


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts; "unknown" elsewhere)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3 or len(fields[1]) <= len(best):
            continue
        if resolved == fields[1] or resolved.startswith(fields[1].rstrip("/") + "/"):
            best, kind = fields[1], fields[2]
    return kind


def memory_text() -> str:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    text = f"peak RSS (getrusage ru_maxrss) {peak_kib / 1024:.1f} MiB"
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        text += f", current RSS {pages * os.sysconf('SC_PAGE_SIZE') / 2**20:.1f} MiB"
    except (OSError, ValueError, IndexError):
        pass
    return text


# -- main ----------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="measured calls per variant (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls per variant (default 20)")
    args = parser.parse_args(argv)
    if args.calls < 2 or args.warmup < 0:
        parser.error("--calls must be at least 2 and --warmup at least 0")
    started = time.perf_counter()
    print("Conveyor agent-layer benchmark (bench/agent_overhead)")
    print(
        f"python {platform.python_version()}, anthropic {anthropic.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}; stub on 127.0.0.1, zero latency"
    )
    print(f"memory before: {memory_text()}")
    print()
    models = ModelTable()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with TimedStub() as stub:
            stub.set_handler(lambda body: Reply.text(REPLY_TEXT))
            variants, clients = build_variants(stub, tmp, models)
            try:
                measure_overhead(stub, variants, calls=args.calls, warmup=args.warmup)
            finally:
                for client in clients:
                    client.close()
        print_overhead(variants, args.calls, args.warmup)
        print(f"   (call logs, traces and replay entries were written under {tmp}, on {filesystem_of(tmp)})")
        print_cache(run_conversation(tmp, models))
    print()
    print(f"3. memory after: {memory_text()}")
    print(f"(whole run: {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
