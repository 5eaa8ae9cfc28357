"""Benchmark of the scheduling policy's makespan (issue 5 §9, "makespan"). Run it from the repository root::

    uv run --no-sync python -m bench.makespan [--seed 1] [--scale S] [--workers 1,2,4,8]

**What it measures: the scheduler, with real sleeps, not the full loop.** A seeded generator makes a backlog of
40 tickets (:class:`conveyor.domain.ticket.Ticket`, ids BM-FEAT-001...) in 6 layers: each ticket of layer k+1
depends on each ticket of layer k with probability 0.15; agent latency is lognormal (mean 2 s, sigma 0.5), and
``estimate_tokens`` is 10,000 per second of latency, so ``estimate_weight`` (what Conveyor's critical path
weighs) reflects the latency; 10 % of the tickets (4) share one touch set, the others have a file each;
severities are drawn at random (as a report's findings would carry them), independent of the graph.

A driver thread plays the execution loop's dispatch cycle: plan, start each chosen ticket as a real
``time.sleep(latency x scale)`` in a thread pool of ``workers`` threads, wait for the first to finish, mark it
done, plan again. Three policies choose what starts, all with the same slot and touch-set rule (a ticket whose
touch set overlaps a running or just-chosen one waits; ``touch_sets_overlap``):

- **conveyor**: ``conveyor.domain.scheduling.plan_dispatch`` itself (longest remaining critical path by
  estimate first, then severity, phase, dependencies, id), budget mode normal, no merge-conflict predictor;
- **fifo**: the ready tickets in backlog order (the order the tickets were generated: layer by layer);
- **seed 001**: the order of ``Backlog.ready()`` (severity first, then the remaining path in tickets).

Printed per policy and worker count: the measured makespan, the lower bound max(critical path, total work /
workers) (both by latency, scaled), their ratio (goal of issue 5: at most 1.15 at 4 workers, for Conveyor's
scheduler), and the ratio of the same schedule in virtual time (an event simulation without sleeping, the
same policies) as a cross-check: the difference is the dispatch overhead and the sleeps' timing. One seed is one
sample, so a summary of the virtual-time ratios over ``--virtual-seeds`` further seeds follows (no sleeping).

All real-sleep runs are sequential in one process. ``--scale`` shrinks the latencies; by default it is 1.0 when
the whole run (the sum of the virtual makespans) fits in 9 minutes, else the largest scale that does (printed).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from conveyor.domain.backlog import Backlog
from conveyor.domain.budget import BudgetMode
from conveyor.domain.scheduling import plan_dispatch, touch_sets_overlap
from conveyor.domain.ticket import Severity, State, TaskType, Ticket

TICKETS = 40
LAYERS = 6
EDGE_P = 0.15
MEAN_S = 2.0
SIGMA = 0.5
SHARED_SHARE = 0.10
TOKENS_PER_S = 10_000
GOAL = 1.15
GOAL_WORKERS = 4
BUDGET_S = 540.0  # the default scale keeps the real-sleep runs under 9 minutes

Policy = Callable[[Backlog, list[Ticket], int], list[Ticket]]


# -- the backlog -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    tickets: list[Ticket]
    latency: dict[str, float]  # seconds, unscaled
    layers: list[list[str]]
    shared: list[str]


def generate(seed: int) -> Generated:
    rng = random.Random(seed)  # noqa: S311  (a reproducible benchmark input, not a secret)
    sizes = [TICKETS // LAYERS + (1 if k < TICKETS % LAYERS else 0) for k in range(LAYERS)]
    ids = [f"BM-FEAT-{i:03d}" for i in range(1, TICKETS + 1)]
    layers: list[list[str]] = []
    at = 0
    for size in sizes:
        layers.append(ids[at : at + size])
        at += size
    mu = math.log(MEAN_S) - SIGMA**2 / 2  # lognormal mean = exp(mu + sigma^2 / 2) = MEAN_S
    latency = {tid: rng.lognormvariate(mu, SIGMA) for tid in ids}
    shared = sorted(rng.sample(ids, round(SHARED_SHARE * TICKETS)))
    depends: dict[str, list[str]] = {tid: [] for tid in ids}
    for upper, lower in itertools.pairwise(layers):
        for child in lower:
            depends[child] = [parent for parent in upper if rng.random() < EDGE_P]
    severities = list(Severity)
    tickets = []
    for layer_no, layer in enumerate(layers):
        for tid in layer:
            n = int(tid[-3:])
            tickets.append(
                Ticket(
                    id=tid,
                    title=f"Generated ticket {n}",
                    phase=layer_no + 1,
                    severity=rng.choice(severities),
                    depends_on=tuple(depends[tid]),
                    touch_set=("src/shared/registry.py",) if tid in shared else (f"src/gen/mod_{n:03d}.py",),
                    task_type=TaskType.FEATURE_ADD,
                    estimate_tokens=round(latency[tid] * TOKENS_PER_S),
                )
            )
    return Generated(tickets, latency, layers, shared)


# -- the policies ------------------------------------------------------------------------------------------


def _fill(order: list[Ticket], running: list[Ticket], workers: int) -> list[Ticket]:
    """Walk ``order``: start while a slot is free and the touch set clashes with nothing running or chosen."""
    running_ids = {t.id for t in running}
    slots = max(0, workers - len(running_ids))
    start: list[Ticket] = []
    for ticket in order:
        if len(start) >= slots:
            break
        if ticket.id in running_ids:
            continue
        if any(touch_sets_overlap(ticket, other) for other in (*running, *start)):
            continue
        start.append(ticket)
    return start


def conveyor_policy(backlog: Backlog, running: list[Ticket], workers: int) -> list[Ticket]:
    return plan_dispatch(backlog, running, workers=workers, mode=BudgetMode.NORMAL).start


def fifo_policy(backlog: Backlog, running: list[Ticket], workers: int) -> list[Ticket]:
    ready = {t.id for t in backlog.ready()}
    return _fill([t for t in backlog if t.id in ready], running, workers)


def seed001_policy(backlog: Backlog, running: list[Ticket], workers: int) -> list[Ticket]:
    return _fill(backlog.ready(), running, workers)


POLICIES: dict[str, Policy] = {"conveyor": conveyor_policy, "fifo": fifo_policy, "seed 001": seed001_policy}


# -- the drivers -------------------------------------------------------------------------------------------


def _set(backlog: Backlog, tid: str, state: State) -> Backlog:
    return backlog.replace(backlog[tid].model_copy(update={"state": state}))


def run_real(gen: Generated, policy: Policy, workers: int, scale: float) -> tuple[float, float]:
    """Makespan with real sleeps in a pool of ``workers`` threads; and the time spent in the policy."""
    backlog = Backlog(gen.tickets)
    running: dict[Future[str], str] = {}
    planning = 0.0

    def work(tid: str) -> str:
        time.sleep(gen.latency[tid] * scale)
        return tid

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-agent") as pool:
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            chosen = policy(backlog, [backlog[tid] for tid in running.values()], workers)
            planning += time.perf_counter() - t0
            for ticket in chosen:
                backlog = _set(backlog, ticket.id, State.IMPLEMENTING)
                running[pool.submit(work, ticket.id)] = ticket.id
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                backlog = _set(backlog, running.pop(future), State.DONE)
        makespan = time.perf_counter() - started
    left = [t.id for t in backlog if t.state is not State.DONE]
    if left:
        raise RuntimeError(f"the schedule ended with {len(left)} tickets not done: {left[:5]}")
    return makespan, planning


def run_virtual(gen: Generated, policy: Policy, workers: int) -> float:
    """The same cycle in virtual time (unscaled seconds): no sleeping, finish times from the latencies."""
    backlog = Backlog(gen.tickets)
    now = 0.0
    finish: dict[str, float] = {}
    while True:
        for ticket in policy(backlog, [backlog[tid] for tid in finish], workers):
            backlog = _set(backlog, ticket.id, State.IMPLEMENTING)
            finish[ticket.id] = now + gen.latency[ticket.id]
        if not finish:
            return now
        now = min(finish.values())
        for tid in [t for t, at in finish.items() if at == now]:
            del finish[tid]
            backlog = _set(backlog, tid, State.DONE)


def lower_bound(gen: Generated, workers: int) -> tuple[float, float, float]:
    """(max(critical path, work / workers), critical path, work / workers), unscaled seconds."""
    _, critical = Backlog(gen.tickets).critical_path(lambda t: gen.latency[t.id])
    per_worker = sum(gen.latency.values()) / workers
    return max(critical, per_worker), critical, per_worker


def print_virtual_seeds(first: int, count: int, workers_list: list[int]) -> None:
    """Virtual-time ratios over many generated backlogs (no sleeping): one seed is one sample."""
    seeds = range(first, first + count)
    ratios: dict[tuple[str, int], list[float]] = {(n, w): [] for n in POLICIES for w in workers_list}
    for seed in seeds:
        gen = generate(seed)
        for w in workers_list:
            bound = lower_bound(gen, w)[0]
            for name, policy in POLICIES.items():
                ratios[(name, w)].append(run_virtual(gen, policy, w) / bound)
    print()
    print(f"   virtual time only (no sleeps), seeds {first}..{first + count - 1}: ratio median / p90 / max")
    print(f"   {'workers':>7} " + " ".join(f"{name:>22}" for name in POLICIES))
    for w in workers_list:
        cells = []
        for name in POLICIES:
            values = sorted(ratios[(name, w)])
            p90 = values[min(len(values) - 1, math.ceil(0.9 * len(values)) - 1)]
            cells.append(f"{values[len(values) // 2]:.3f} / {p90:.3f} / {values[-1]:.3f}")
        print(f"   {w:>7} " + " ".join(f"{c:>22}" for c in cells))
    at_goal = ratios.get(("conveyor", GOAL_WORKERS))
    if at_goal:
        share = sum(1 for r in at_goal if r <= GOAL) / len(at_goal)
        print(f"   Conveyor at {GOAL_WORKERS} workers: ratio <= {GOAL} on {100 * share:.0f} % of the seeds (virtual)")


# -- main --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.makespan", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--scale", type=float, default=None, help="latency scale (default: 1.0 if it fits 9 min)")
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts (default 1,2,4,8)")
    parser.add_argument(
        "--virtual-seeds", type=int, default=50, help="seeds of the virtual-time summary (default 50; 0: off)"
    )
    args = parser.parse_args(argv)
    workers_list = [int(w) for w in args.workers.split(",")]
    started = time.perf_counter()
    gen = generate(args.seed)
    virtual = {(name, w): run_virtual(gen, policy, w) for name, policy in POLICIES.items() for w in workers_list}
    needed = sum(virtual.values())
    if args.scale is None:
        scale = 1.0 if needed <= BUDGET_S else math.floor(100 * BUDGET_S / needed) / 100
        why = "default: the largest of 1.0 and below that keeps the sleeps under 9 minutes"
    else:
        scale, why = args.scale, "--scale"
    edges = sum(len(t.depends_on) for t in gen.tickets)
    critical_ids, _ = Backlog(gen.tickets).critical_path(lambda t: gen.latency[t.id])
    print("Conveyor scheduler makespan (bench/makespan)")
    print("MEASURES THE SCHEDULING POLICY WITH REAL SLEEPS IN A THREAD POOL, NOT THE FULL EXECUTION LOOP")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    print(
        f"seed {args.seed}: {TICKETS} tickets in {LAYERS} layers {[len(layer) for layer in gen.layers]}, {edges} "
        f"dependency edges (p={EDGE_P} between consecutive layers); latency lognormal mean {MEAN_S} s sigma {SIGMA}: "
        f"total {sum(gen.latency.values()):.1f} s, min {min(gen.latency.values()):.2f} s, "
        f"max {max(gen.latency.values()):.2f} s"
    )
    shared_s = sum(gen.latency[t] for t in gen.shared)
    print(
        f"touch set shared by {len(gen.shared)} tickets ({', '.join(gen.shared)}; {shared_s:.1f} s of work that "
        f"cannot overlap); critical path {len(critical_ids)} tickets"
    )
    print(f"latency scale {scale:g} ({why}); the real-sleep runs take about {needed * scale:.0f} s")
    print()
    print(
        f"   {'policy':<9} {'workers':>7} | {'makespan s':>10} {'bound s':>8} {'ratio':>6} | {'virtual ratio':>13} | "
        f"{'bound = max(critical path, work/workers)':<42} {'dispatch ms':>11}"
    )
    ratios: dict[tuple[str, int], float] = {}
    for w in workers_list:
        bound, critical, per_worker = lower_bound(gen, w)
        for name, policy in POLICIES.items():
            makespan, planning = run_real(gen, policy, w, scale)
            ratio = makespan / (bound * scale)
            ratios[(name, w)] = ratio
            which = f"max({critical * scale:.2f}, {per_worker * scale:.2f})"
            print(
                f"   {name:<9} {w:>7} | {makespan:10.2f} {bound * scale:8.2f} {ratio:6.3f} | "
                f"{virtual[(name, w)] / bound:13.3f} | {which:<42} {1000 * planning:11.1f}",
                flush=True,
            )
    if ("conveyor", GOAL_WORKERS) in ratios:
        got = ratios[("conveyor", GOAL_WORKERS)]
        verdict = "MET" if got <= GOAL else f"NOT MET (by {got - GOAL:.3f})"
        print(f"goal: Conveyor's ratio <= {GOAL} at {GOAL_WORKERS} workers (real sleeps): {got:.3f}: {verdict}")
    if args.virtual_seeds > 0:
        print_virtual_seeds(args.seed, args.virtual_seeds, workers_list)
    print(f"(whole benchmark: {time.perf_counter() - started:.1f} s; {threading.active_count()} threads at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
