"""Benchmark of how the execution loop scales with the backlog (issue 5 §9, "scale"). Run it from the repository root::

    uv run --no-sync python -m bench.scale [--sizes 50,100,200,400] [--cap-s 600] [--workers 2]

For each size, the REAL loop (``flows.execution_loop.execution_loop``) delivers that many independent tickets
with zero-latency scripted agents and one trivial gate, exactly as bench/loop_overhead sets it up
(bench/_loop_fixture.py), each size in its own child process so that its peak memory is its own. One Prefect API
server (started here, under a temp PREFECT_HOME) serves every child.

Printed per size: the loop's wall time (the flow call, from start to return), seconds per ticket, the child's
RSS before the run, the run's peak RSS (/proc/self/statm sampled every 0.1 s during the flow call), the RSS
after it and ``getrusage(RUSAGE_SELF).ru_maxrss`` (which may come from the imports), and the mean time per call
of the parts that grow with the backlog (``Tracker._write``, ``plan_dispatch``, ``GitRepo._git``); then the
scaling exponents: the least-squares slope of log(wall) and of log(run peak RSS) against log(tickets), and the
slope between each pair of consecutive sizes (1 = linear, 2 = quadratic). Last, for every size (those the cap
skipped too), the time of one ``Tracker._write`` alone on a fresh backlog of that size, without the loop.

The whole benchmark is capped at ``--cap-s`` seconds (default 600, issue 5 §9), counted from its start: before
each size the wall time is predicted from the sizes measured so far (their slope; linear after the first) and
the size is skipped, with the prediction printed, when it would not finish within the cap; a size that is still
running when the cap is reached is stopped and reported as such. Issue 5 asks for 100, 200 and 400 tickets; 50 is
measured too because on a small machine 200 and 400 do not fit the cap, and an exponent needs two sizes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._loop_fixture import (
    CATEGORIES,
    Timers,
    check_run,
    instrumented,
    load_average,
    make_repo,
    prepare_environment,
    print_header,
    run_loop,
    temp_root,
    warm_up_prefect,
    write_cost_ms,
)

CHILD_OVERHEAD_S = 15.0  # child start, imports and repository creation, before its first measurement


def current_rss_mib() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- one size, in a child process -------------------------------------------------------------------------


def run_one(n: int, workdir: Path, api_url: str, workers: int, gate: list[str], sandbox: str) -> dict[str, Any]:
    prepare_environment(workdir / "prefect-home", api_url)
    repo = make_repo(workdir / f"target-{n}", n, workers=workers, gate=gate, sandbox=sandbox)
    import flows.execution_loop  # noqa: F401  (imported before the baseline RSS is taken)

    warm_up_prefect()  # this process's Prefect client and first flow run, not counted
    rss_before = current_rss_mib()
    timers = Timers()
    sampled = [rss_before]
    stop = threading.Event()

    def sample() -> None:  # the run's own peak: ru_maxrss may come from the imports or the warm-up
        while not stop.wait(0.1):
            sampled.append(current_rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with instrumented(timers):
            run = run_loop(repo, n)
    finally:
        stop.set()
        sampler.join()
    return {
        "tickets": n,
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "children_cpu_s": run.children_cpu_s,
        "load_after": load_average(),
        "problem": check_run(run),
        "rss_before_mib": rss_before,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "run_peak_rss_mib": max(sampled),
        "rss_after_mib": current_rss_mib(),
        "calls": dict(timers.calls),
        "busy": dict(timers.busy),
        "split": timers.partition(run.started, run.ended),
    }


# -- the parent --------------------------------------------------------------------------------------------


@dataclass
class Measured:
    tickets: int
    data: dict[str, Any]

    @property
    def wall(self) -> float:
        return float(self.data["wall_s"])

    @property
    def peak(self) -> float:
        """The run's peak RSS (sampled every 0.1 s during the flow call)."""
        return float(self.data["run_peak_rss_mib"])

    def ms_per_call(self, category: str) -> float:
        calls = self.data["calls"].get(category, 0)
        return 1000 * self.data["busy"].get(category, 0.0) / calls if calls else float("nan")


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def predict(measured: list[Measured], n: int) -> tuple[float, str]:
    last = measured[-1]
    if len(measured) == 1:
        return last.wall * n / last.tickets, "linear from one size"
    k = slope([(m.tickets, m.wall) for m in measured])
    return last.wall * (n / last.tickets) ** k, f"slope {k:.2f} of the sizes so far"


def run_child(
    n: int, workdir: Path, api_url: str, args: argparse.Namespace, timeout_s: float
) -> tuple[dict[str, Any] | None, str]:
    command = [
        sys.executable,
        "-m",
        "bench.scale",
        "--one",
        str(n),
        "--workdir",
        str(workdir),
        "--api-url",
        api_url,
        "--workers",
        str(args.workers),
        "--gate",
        args.gate,
        "--sandbox",
        args.sandbox,
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=max(1.0, timeout_s))
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGTERM)  # the child's own process group (its git and gate processes)
        try:
            child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
        return None, f"stopped at the cap after {timeout_s:.0f} s"
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        return None, f"child failed ({child.returncode}): {err.strip()[-1500:]}"
    return json.loads(lines[-1]), ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50,100,200,400", help="ticket counts (default 50,100,200,400)")
    parser.add_argument("--cap-s", type=float, default=600.0, help="cap on the whole benchmark, s (default 600)")
    parser.add_argument("--workers", type=int, default=2, help="build-spec workers (default 2)")
    parser.add_argument("--gate", default="true", help="the one quality gate's command (default: true)")
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"), help="agents.sandbox")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode: one size
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one is not None:
        data = run_one(args.one, Path(args.workdir), args.api_url, args.workers, args.gate.split(), args.sandbox)
        print(json.dumps(data))
        return 0

    started = time.perf_counter()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with temp_root("conveyor-bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        prepare_environment(tmp / "prefect-home")
        from prefect.server.api.server import SubprocessASGIServer

        print_header("Conveyor execution-loop scaling (bench/scale)", tmp)
        print(
            f"sizes {sizes}, workers {args.workers}, independent tickets, scripted agents (zero latency), gate "
            f"{args.gate.split()!r}, sandbox {args.sandbox}; one child process per size; cap {args.cap_s:.0f} s overall"
        )
        server = SubprocessASGIServer()
        server.start(timeout=120)
        print(f"Prefect API server {server.api_url} started in {time.perf_counter() - started:.1f} s (within the cap)")
        measured: list[Measured] = []
        try:
            for n in sizes:
                elapsed = time.perf_counter() - started
                remaining = args.cap_s - elapsed
                if measured:
                    guess, how = predict(measured, n)
                    if guess + CHILD_OVERHEAD_S > remaining:
                        print(
                            f"{n:>5} tickets: SKIPPED: predicted {guess:.0f} s ({how}) + ~{CHILD_OVERHEAD_S:.0f} s "
                            f"set-up, but only {remaining:.0f} s of the {args.cap_s:.0f} s cap are left"
                        )
                        continue
                got, problem = run_child(n, tmp / f"size-{n}", str(server.api_url), args, remaining)
                if got is None:
                    print(f"{n:>5} tickets: {problem}")
                    continue
                if got["problem"]:
                    print(f"{n:>5} tickets: RUN DID NOT FINISH CLEANLY: {got['problem']}")
                measured.append(Measured(n, got))
                print_size(measured[-1])
        finally:
            server.stop()
        print_summary(measured)
        print_write_costs(sizes, tmp)
    print(f"(whole benchmark: {time.perf_counter() - started:.1f} s, cap {args.cap_s:.0f} s)")
    return 0


def print_size(m: Measured) -> None:
    n, data = m.tickets, m.data
    print(
        f"{n:>5} tickets: wall {m.wall:7.1f} s = {m.wall / n:.3f} s/ticket; RSS MiB: before the run "
        f"{data['rss_before_mib']:.1f}, run peak {m.peak:.1f}, after {data['rss_after_mib']:.1f}, "
        f"ru_maxrss {data['peak_rss_mib']:.1f}; ms per call: state write "
        f"{m.ms_per_call('state writes'):.1f}, dispatch {m.ms_per_call('dispatch'):.1f}, "
        f"git {m.ms_per_call('git'):.1f}; CPU s/ticket: loop {data['cpu_s'] / n:.3f}, children "
        f"{data['children_cpu_s'] / n:.3f}; load average after {data['load_after']}",
        flush=True,
    )


def print_summary(measured: list[Measured]) -> None:
    if not measured:
        print("no size finished")
        return
    print()
    print("   wall time split (s per ticket; partition of wall time, see bench/loop_overhead):")
    labels = [("Prefect (rest)" if c == "rest" else c) for c in (*CATEGORIES, "rest")]
    print("   " + f"{'tickets':>7} " + " ".join(f"{label:>17}" for label in labels))
    for m in measured:
        split = m.data["split"]
        print("   " + f"{m.tickets:>7} " + " ".join(f"{split[c] / m.tickets:17.3f}" for c in (*CATEGORIES, "rest")))
    if len(measured) < 2:
        print("scaling exponent: needs two sizes or more")
        return
    wall_k = slope([(m.tickets, m.wall) for m in measured])
    mem_k = slope([(m.tickets, m.peak) for m in measured])
    pairs = ", ".join(
        f"{a.tickets}->{b.tickets}: {slope([(a.tickets, a.wall), (b.tickets, b.wall)]):.2f}"
        for a, b in itertools.pairwise(measured)
    )
    write_k = slope([(m.tickets, m.ms_per_call("state writes")) for m in measured])
    cpu_k = slope([(m.tickets, m.data["cpu_s"]) for m in measured])
    print(f"scaling exponent of wall time (log-log least squares): {wall_k:.2f}  (pairs: {pairs})")
    growth = slope([(m.tickets, max(1e-3, m.peak - m.data["rss_before_mib"])) for m in measured])
    print(f"scaling exponent of the run's peak RSS: {mem_k:.2f}; of its growth over the RSS before it: {growth:.2f}")
    print(f"scaling exponent of the loop process's CPU time (less sensitive to other load): {cpu_k:.2f}")
    print(f"scaling exponent of the time per state write (Tracker._write): {write_k:.2f} (0 = constant per write)")


def print_write_costs(sizes: list[int], tmp: Path) -> None:
    """One state write alone, for every size (also those the cap skipped): a few seconds, no Prefect."""
    costs = [(n, write_cost_ms(tmp / f"writes-{n}", n)) for n in sizes]
    shown = ", ".join(f"{n}: {ms:.1f} ms" for n, ms in costs)
    print(f"Tracker._write alone (fresh backlog, no loop, median of 10): {shown}")
    if len(costs) >= 2:
        k = slope(costs)
        n, ms = costs[-1]
        print(
            f"   slope {k:.2f} per write; at ~10 writes per ticket a run of {n} tickets spends at least "
            f"{10 * n * ms / 1000:.0f} s in state writes (the writes grow further as run-state fills)"
        )


if __name__ == "__main__":
    sys.exit(main())
