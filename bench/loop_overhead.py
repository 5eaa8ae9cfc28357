"""Benchmark of the execution loop's own overhead (issue 5 §9, "overhead"). Run it from the repository root::

    uv run --no-sync python -m bench.loop_overhead [--tickets 100] [--workers 2] [--gate true] [--sandbox auto]

The REAL loop (``flows.execution_loop.execution_loop``: the Prefect flow, one ``deliver-ticket`` subflow per
ticket, worktrees, the merge queue with its squash commits) on a real git repository in a temp dir, with
``--tickets`` independent tickets (disjoint touch sets, so ``--workers`` run at a time) and zero-latency agents:
the scripted backend (implementer: one file per ticket; reviewer: approve; knowledge steward: a waiver) and one
trivial quality gate (``true``). Prefect uses its own ephemeral API server under a temp PREFECT_HOME, started
by a warm-up flow before the timed run.

Printed: wall seconds per ticket (goal of issue 5: at most 0.5 s), and that wall time split into

- **gates**: ``run_quality_gates`` (the QA stage, and the merge queue's re-run after a rebase),
- **git**: ``GitRepo._git``, every git command Conveyor runs (worktrees, commits, diffs, merge-tree, rebase),
- **state writes**: ``Tracker._write`` (TASKS.md, run-queue.json, run-state.json after each change),
- **agents**: the agent backend's ``run`` (scripted, zero latency: the recording layer, the script, its commit),
- **dispatch**: ``plan_dispatch`` (scheduling),
- **prefect slots**: the Limiter's Prefect concurrency slot around each agent call (acquire, lease renewal
  thread, release: ``delivery_agents._Limited.run`` minus the agent call inside it),
- **prefect artifacts**: the ticket and progress artifacts published after each ticket (``_Loop._publish``),
- **Prefect (rest)**: total - the above: Prefect's flow and subflow machinery, API calls and events, plus the
  rest of Conveyor's Python between those calls.

Prefect, as the issue asks for it, is the sum of the three Prefect lines (printed).

The wrappers time and call through (installed for the run, removed after it). Deliveries run in parallel
threads, so the split is a partition of wall time: each instant goes to the highest-priority category active
in any thread then (the order above); "busy" columns give the summed thread time of each category as well.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench._loop_fixture import (
    CATEGORIES,
    PREFECT_CATEGORIES,
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
)

GOAL_S = 0.5


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=100, help="independent tickets (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="build-spec workers (default 2)")
    parser.add_argument(
        "--gate", default="true", help="the one quality gate's command, split on blanks (default: true)"
    )
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"), help="agents.sandbox")
    args = parser.parse_args(argv)
    if args.tickets < 1:
        parser.error("--tickets must be at least 1")

    with temp_root("conveyor-bench-loop-") as tmp_name:
        tmp = Path(tmp_name)
        prepare_environment(tmp / "prefect-home")

        from conveyor.adapters.sandbox.select import select_sandbox

        print_header("Conveyor execution-loop overhead (bench/loop_overhead)", tmp)
        sandbox = select_sandbox(args.sandbox).name
        print(
            f"{args.tickets} independent tickets, workers {args.workers}, scripted agents (zero latency), "
            f"gate {args.gate.split()!r} in sandbox {sandbox!r}; Prefect: ephemeral API server in the temp dir"
        )
        repo = make_repo(
            tmp / "target", args.tickets, workers=args.workers, gate=args.gate.split(), sandbox=args.sandbox
        )
        warm = warm_up_prefect()
        print(f"Prefect warm-up flow (starts the API server; not counted): {warm:.1f} s")
        timers = Timers()
        with instrumented(timers):
            run = run_loop(repo, args.tickets)
        problem = check_run(run)
        if problem:
            print(f"RUN DID NOT FINISH CLEANLY: {problem}")
        print_split(run.wall_s, run.tickets, timers, timers.partition(run.started, run.ended))
        print(
            f"CPU per ticket: loop process {run.cpu_s / run.tickets:.3f} s (all threads), its child processes (git, "
            f"gates, bwrap) {run.children_cpu_s / run.tickets:.3f} s; load average after the run {load_average()} "
            f"(other work on the machine slows the wall figures)"
        )
        print(f"peak RSS (getrusage ru_maxrss) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
        return 1 if problem else 0


def print_split(wall: float, n: int, timers: Timers, split: dict[str, float]) -> None:
    per = wall / n
    print()
    print(f"whole loop: {wall:.2f} s for {n} tickets = {per:.3f} s per ticket")
    print(f"   {'part':<16} {'s/ticket':>9} {'share':>7} | {'busy s/ticket':>13} {'calls/ticket':>12} {'ms/call':>8}")
    for category in (*CATEGORIES, "rest"):
        label = "Prefect (rest)" if category == "rest" else category
        row = f"   {label:<16} {split[category] / n:9.3f} {100 * split[category] / wall:6.1f}%"
        if category != "rest":
            calls = timers.calls.get(category, 0)
            busy = timers.busy.get(category, 0.0)
            row += f" | {busy / n:13.3f} {calls / n:12.1f} {1000 * busy / calls if calls else 0:8.2f}"
        print(row)
    prefect = sum(split[c] for c in PREFECT_CATEGORIES)
    print(f"   {'Prefect (total)':<16} {prefect / n:9.3f} {100 * prefect / wall:6.1f}%   (slots + artifacts + rest)")
    verdict = "MET" if per <= GOAL_S else f"NOT MET: {per / GOAL_S:.1f}x the goal"
    print(f"goal <= {GOAL_S} s per ticket (issue 5 §9): {verdict}")


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"(whole benchmark: {time.perf_counter() - started:.1f} s)")
    sys.exit(code)
