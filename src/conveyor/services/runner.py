"""The seed-003 runner: gated workflow runs with durable records, in one go or command by command.

Every write holds the repository lease. ``run_workflow`` holds it (under its run id) for the whole run, so a
``gate finish``/``gate fail`` from another shell does not write the record itself: it leaves a request in
the gate's logs folder and waits for the runner to record the attempt. Without a live lease holder the
gate commands take the lease and do the work themselves (manual mode).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from conveyor.adapters.atomic import write_json, write_text
from conveyor.adapters.evidence import collect_evidence
from conveyor.adapters.gate_contracts import load_contract, load_workflow
from conveyor.adapters.lease import RepositoryLease, read_lease
from conveyor.adapters.run_store import RunStore
from conveyor.domain import run as records
from conveyor.domain.errors import ConveyorError, InputError, Problem
from conveyor.domain.gate import (
    Evidence,
    EvidenceRequest,
    GateContract,
    PathVariableError,
    expand,
    required_evidence,
    verdict,
)
from conveyor.domain.run import (
    Depth,
    GateAttempt,
    GateRecord,
    GateStatus,
    Invocation,
    InvocationStatus,
    RunMode,
    RunRecord,
    RunStateError,
    RunStatus,
    WorkflowRef,
    describe_attempt,
)
from conveyor.domain.workflow import Workflow, prompt_packet
from conveyor.ports import Clock, Sleep, utcnow

WORKFLOW_COMMAND = "workflow run"
DEFAULT_POLL_S = 0.5
DEFAULT_REQUEST_WAIT_S = 600.0
Report = Callable[[str], None]


@dataclass(frozen=True)
class RunnerClock:
    """Time as the runner sees it; tests replace both."""

    now: Clock = utcnow
    sleep: Sleep = time.sleep


def variables_for(run: RunRecord) -> dict[str, str]:
    return {
        "slug": run.workflow.slug,
        "artifact_path": run.workflow.artifact_path,
        "run_id": run.run_id,
        "depth": run.depth.value,
    }


@dataclass
class _TerminalAnswers:
    """Lines typed in the runner's terminal, read by a daemon thread so waiting can also poll for requests."""

    source: TextIO
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    eof: bool = False

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, name="conveyor-terminal-answers", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in iter(self.source.readline, ""):
                self.lines.put(line)
        except (OSError, ValueError):
            pass  # closed or unreadable stdin: no terminal answers will come
        self.lines.put(None)

    def poll(self) -> str | None:
        """The next line, or None when none is waiting; sets ``eof`` once the input is exhausted."""
        try:
            line = self.lines.get_nowait()
        except queue.Empty:
            return None
        if line is None:
            self.eof = True
        return line


class Runner:
    """Use cases on one repository's run records."""

    def __init__(
        self,
        repo: Path,
        *,
        clock: RunnerClock | None = None,
        poll_s: float = DEFAULT_POLL_S,
        lease_ttl_s: float = 60.0,
    ) -> None:
        self.repo = repo
        self.store = RunStore(repo)
        self.clock = clock or RunnerClock()
        self.poll_s = poll_s
        self.lease_ttl_s = lease_ttl_s

    @contextmanager
    def _lease(self, run_id: str, command: str) -> Iterator[RepositoryLease]:
        lease = RepositoryLease(self.repo, run_id=run_id, command=command, ttl_s=self.lease_ttl_s)
        lease.acquire()
        try:
            yield lease
        finally:
            lease.release()

    # --- creating runs -----------------------------------------------------------------------------

    def _new_run(
        self, lease: RepositoryLease, workflow: Workflow, *, slug: str, artifact_path: str, depth: Depth, mode: RunMode
    ) -> RunRecord:
        now = self.clock.now()
        run_id = self.store.next_run_id(now)
        if run_id != lease.run_id:  # the id we reserved before taking the lease was taken meanwhile
            lease.run_id = run_id
            lease.renew()
        ref = WorkflowRef(name=workflow.name, version=workflow.version, slug=slug, artifact_path=artifact_path)
        gates = [GateRecord(gate=g.id, name=g.name, contract=g.contract) for g in workflow.gates]
        return self.store.create_run(ref, gates, now, depth=depth, mode=mode, run_id=run_id)

    @staticmethod
    def _check_arguments(slug: str, artifact_path: str) -> None:
        problems = []
        if not slug.strip() or "/" in slug:
            problems.append(f"--slug {slug!r} must be a non-empty name without '/'")
        try:
            expand("{artifact_path}", {"artifact_path": artifact_path})
        except PathVariableError:
            problems.append(f"--artifact-path {artifact_path!r} must be a path relative to the repository")
        if problems:
            raise InputError([Problem("command line", None, message) for message in problems])

    def start_run(self, workflow_name: str, *, slug: str, artifact_path: str, depth: Depth) -> RunRecord:
        """Manual mode: create the run; gates are then started and finished one command at a time."""
        self._check_arguments(slug, artifact_path)
        workflow, _ = load_workflow(self.repo, workflow_name)
        with self._lease(self.store.next_run_id(self.clock.now()), "runs start") as lease:
            return self._new_run(
                lease, workflow, slug=slug, artifact_path=artifact_path, depth=depth, mode=RunMode.MANUAL
            )

    # --- gates -------------------------------------------------------------------------------------

    def _definition(self, run: RunRecord) -> tuple[Workflow, dict[str, GateContract]] | None:
        try:
            return load_workflow(self.repo, run.workflow.name)
        except ConveyorError:
            return None  # the workflow file changed or went away: the gate still runs on its contract

    def _write_packet(self, run: RunRecord, gate_id: str, prompt: str | None = None) -> Path | None:
        definition = self._definition(run)
        if definition is None:
            return None
        workflow, contracts = definition
        gate = workflow.gate(gate_id)
        if gate is None or gate_id not in contracts:
            return None
        position = (workflow.gates.index(gate) + 1, len(workflow.gates))
        text = prompt_packet(
            run_id=run.run_id,
            gate=gate,
            contract=contracts[gate_id],
            variables=variables_for(run),
            prompt=prompt,
            position=position,
        )
        path = self.store.gate_logs_dir(run.run_id, gate_id) / "prompt.txt"
        write_text(path, text)
        return path

    def _start(self, run: RunRecord, gate_id: str, agent: str | None) -> tuple[RunRecord, GateAttempt]:
        self.store.clear_requests(run.run_id, gate_id)
        run, attempt = records.start_gate(run, gate_id, agent, self.clock.now())
        self.store.write_attempt(run.run_id, attempt)
        self.store.save(run)
        return run, attempt

    def start_gate(self, run_id: str, gate_id: str, agent: str | None = None) -> GateAttempt:
        with self._lease(run_id, "gate start"):
            run = self.store.load(run_id)
            run.gate(gate_id)
            definition = self._definition(run)
            default = definition[0].gate(gate_id) if definition else None
            run, attempt = self._start(run, gate_id, agent or (default.agent if default else None))
            self._write_packet(run, gate_id)
            return attempt

    def _record(self, run: RunRecord, attempt: GateAttempt, *, fail_run: bool) -> RunRecord:
        """Write the attempt file first, then RUN.json: whoever sees the attempt finished finds its file."""
        self.store.write_attempt(run.run_id, attempt)
        if fail_run and attempt.status is GateStatus.FAIL:
            run = records.complete_run(run, RunStatus.FAILED, self.clock.now(), f"gate {attempt.gate} failed")
        self.store.save(run)
        return run

    def _finish(self, run: RunRecord, gate_id: str, *, fail_run: bool) -> tuple[RunRecord, GateAttempt]:
        current = records.running_attempt(run, gate_id)
        gate = run.gate(gate_id)
        contract = load_contract(self.repo, gate.contract or gate_id)
        variables = variables_for(run)
        try:
            request = required_evidence(contract, variables)
        except PathVariableError:
            request = EvidenceRequest(files=[], commands=[])  # the verdict names the variable that has no value
        evidence = collect_evidence(self.repo, request, variables)
        self._log_evidence(run.run_id, gate_id, current.attempt, evidence)
        run, attempt = records.finish_gate(run, gate_id, verdict(contract, evidence), self.clock.now())
        return self._record(run, attempt, fail_run=fail_run), attempt

    def _log_evidence(self, run_id: str, gate_id: str, attempt: int, evidence: Evidence) -> None:
        """Command output and file facts (not file text) go to the gitignored logs, for debugging."""
        data = evidence.model_dump(mode="json", exclude={"files": {"__all__": {"text"}}})
        write_json(self.store.gate_logs_dir(run_id, gate_id) / f"attempt-{attempt}.evidence.json", data)

    def _fail(self, run: RunRecord, gate_id: str, reason: str, *, fail_run: bool) -> tuple[RunRecord, GateAttempt]:
        run, attempt = records.fail_gate(run, gate_id, reason, self.clock.now())
        return self._record(run, attempt, fail_run=fail_run), attempt

    def _runner_holds(self, run_id: str) -> bool:
        holder = read_lease(self.repo)
        return (
            holder is not None
            and holder.is_live()
            and holder.run_id == run_id
            and holder.command.startswith(WORKFLOW_COMMAND)
        )

    def finish_gate(self, run_id: str, gate_id: str, *, wait_s: float = DEFAULT_REQUEST_WAIT_S) -> GateAttempt:
        """Run the contract's validations and record the attempt (or ask the live workflow runner to)."""
        if self._runner_holds(run_id):
            return self._ask_runner(run_id, gate_id, None, wait_s)
        with self._lease(run_id, "gate finish"):
            return self._finish(self.store.load(run_id), gate_id, fail_run=False)[1]

    def fail_gate(
        self, run_id: str, gate_id: str, reason: str, *, wait_s: float = DEFAULT_REQUEST_WAIT_S
    ) -> GateAttempt:
        if not reason.strip():
            raise RunStateError(f"failing gate {gate_id} needs a reason")
        if self._runner_holds(run_id):
            return self._ask_runner(run_id, gate_id, reason, wait_s)
        with self._lease(run_id, "gate fail"):
            return self._fail(self.store.load(run_id), gate_id, reason, fail_run=False)[1]

    def _ask_runner(self, run_id: str, gate_id: str, reason: str | None, wait_s: float) -> GateAttempt:
        """Leave a request for the workflow runner and wait until it has recorded the attempt."""
        number = records.running_attempt(self.store.load(run_id), gate_id).attempt
        path = self.store.write_request(run_id, gate_id, reason=reason, now=self.clock.now(), pid=os.getpid())
        deadline = self.clock.now() + timedelta(seconds=wait_s)
        while True:
            summary = self.store.load(run_id).gate(gate_id).attempts[number - 1]
            if summary.status is not GateStatus.RUNNING:
                return self.store.load_attempt(run_id, gate_id, number)
            if not self._runner_holds(run_id):
                summary = self.store.load(run_id).gate(gate_id).attempts[number - 1]
                if summary.status is not GateStatus.RUNNING:
                    return self.store.load_attempt(run_id, gate_id, number)
                raise RunStateError(
                    f"the workflow runner of {run_id} stopped before recording {gate_id} attempt {number}; "
                    "run the command again to finish the gate without it"
                )
            if self.clock.now() >= deadline:
                raise RunStateError(
                    f"no answer from the workflow runner of {run_id} within {wait_s:g}s; "
                    f"the request stays in {self.store.display(path)}"
                )
            self.clock.sleep(self.poll_s)

    def record_invocation(
        self, run_id: str, gate_id: str, agent: str, status: InvocationStatus = InvocationStatus.SUCCESS
    ) -> Invocation:
        with self._lease(run_id, "invocation record"):
            run, invocation = records.record_invocation(
                self.store.load(run_id), gate_id, agent, status, self.clock.now()
            )
            self.store.save(run)
            return invocation

    def complete_run(self, run_id: str, status: RunStatus) -> RunRecord:
        with self._lease(run_id, "runs complete"):
            run = records.complete_run(self.store.load(run_id), status, self.clock.now(), "completed by hand")
            self.store.save(run)
            return run

    # --- the whole workflow ------------------------------------------------------------------------

    def run_workflow(
        self,
        workflow_name: str,
        *,
        slug: str,
        artifact_path: str,
        depth: Depth = Depth.STANDARD,
        prompt: str | None = None,
        answers: TextIO | None = None,
        report: Report = print,
        gate_timeout_s: float | None = None,
    ) -> RunRecord:
        """Run every gate in order, waiting at each for a person; stop at the first failing gate."""
        self._check_arguments(slug, artifact_path)
        workflow, _ = load_workflow(self.repo, workflow_name)
        command = f"{WORKFLOW_COMMAND} {workflow.name}"
        with self._lease(self.store.next_run_id(self.clock.now()), command) as lease:
            run = self._new_run(
                lease, workflow, slug=slug, artifact_path=artifact_path, depth=depth, mode=RunMode.WORKFLOW
            )
            report(f"run {run.run_id}: workflow {workflow.name} ({len(workflow.gates)} gates, depth {depth.value})")
            terminal = _TerminalAnswers(answers) if answers is not None else None
            try:
                for gate in workflow.gates:
                    run, attempt = self._start(run, gate.id, gate.agent)
                    packet = self._write_packet(run, gate.id, prompt)
                    shown = self.store.display(packet) if packet else "(none)"
                    report(f"{gate.id} {gate.name}: started (agent {gate.agent}); prompt packet: {shown}")
                    report(
                        f"  press Enter here when done, or type `fail <reason>`; or from another shell: "
                        f"conveyor gate finish --run {run.run_id} --gate {gate.id}"
                    )
                    action, reason = self._wait(run.run_id, gate.id, terminal, report, gate_timeout_s)
                    if action == "fail":
                        run, attempt = self._fail(run, gate.id, reason or "failed", fail_run=True)
                    else:
                        run, attempt = self._finish(run, gate.id, fail_run=True)
                    for line in describe_attempt(attempt):
                        report(line)
                    if attempt.status is GateStatus.FAIL:
                        report(f"run {run.run_id}: FAILED at {gate.id}")
                        return run
                run = records.complete_run(run, RunStatus.PASSED, self.clock.now(), "every gate passed")
                self.store.save(run)
                report(f"run {run.run_id}: PASSED")
                return run
            except KeyboardInterrupt:
                self._cancel(run.run_id)
                raise

    def _cancel(self, run_id: str) -> None:
        run = self.store.load(run_id)
        if run.is_finished:
            return
        for gate in run.gates:
            if gate.status is GateStatus.RUNNING:
                run, attempt = records.fail_gate(run, gate.gate, "interrupted", self.clock.now())
                self.store.write_attempt(run_id, attempt)
        self.store.save(records.complete_run(run, RunStatus.CANCELED, self.clock.now(), "interrupted"))

    def _wait(
        self,
        run_id: str,
        gate_id: str,
        terminal: _TerminalAnswers | None,
        report: Report,
        timeout_s: float | None,
    ) -> tuple[str, str | None]:
        """("finish", None) or ("fail", reason), from the terminal or from a request file."""
        deadline = self.clock.now() + timedelta(seconds=timeout_s) if timeout_s is not None else None
        while True:
            request = self.store.take_request(run_id, gate_id)
            if request is not None:
                report(f"{gate_id}: {request[0]} requested from another shell")
                return request
            if terminal is not None and not terminal.eof:
                line = terminal.poll()
                if terminal.eof:
                    report(f"  (no more terminal input: waiting for `conveyor gate finish` on {gate_id})")
                elif line is not None:
                    text = line.strip()
                    if not text:
                        return "finish", None
                    if text.split()[0].lower() == "fail":
                        return "fail", text[4:].strip() or "failed in the terminal (no reason given)"
                    report("  press Enter to finish the gate, or type `fail <reason>`")
                    continue
            if deadline is not None and self.clock.now() >= deadline:
                return "fail", f"no answer within {timeout_s:g}s"
            self.clock.sleep(self.poll_s)
