"""The ``bwrap`` sandbox: the command runs under bubblewrap (Debian package ``bubblewrap``).

Inside: the whole filesystem read-only, the working directory (the worktree) bound writable, a private
``/tmp`` (tmpfs, gone afterwards), a minimal ``/dev``, a fresh ``/proc``; no network (``--unshare-net``), its
own PID and IPC namespaces, a new session (no terminal injection), no capabilities, and it dies with Conveyor.
The environment is scrubbed of secrets as for every sandbox; timeouts and output capping are the ``none``
sandbox's.

The worktree's git metadata usually lives outside it (``git worktree``), so commands that write git state
(``git commit``, ``git stash``) fail inside; reading (``git diff``, ``git status``) works.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.adapters.sandbox.environment import scrubbed_environment
from conveyor.adapters.sandbox.local import find_executable, run_process
from conveyor.domain.command import CommandResult


def _tmp_tops(argv: Sequence[str], search_path: str | None) -> list[str]:
    """The /tmp/<name> folders holding the program or a PATH directory: the private /tmp would hide them."""
    candidates = [p for p in (search_path or "").split(os.pathsep) if p]
    if argv and os.sep in argv[0]:
        candidates.append(str(Path(argv[0]).parent))
    tops: list[str] = []
    for candidate in candidates:
        parts = Path(candidate).absolute().parts
        if len(parts) > 2 and parts[1] == "tmp":
            top = str(Path("/", *parts[1:3]))
            if top not in tops and Path(top).exists():
                tops.append(top)
    return tops


def bwrap_command(
    bwrap: str,
    argv: Sequence[str],
    *,
    workdir: Path,
    writable: Sequence[Path] = (),
    search_path: str | None = None,
) -> list[str]:
    """The bubblewrap command line that runs ``argv`` in ``workdir`` with only it (and ``writable``) writable.

    Programs and PATH directories under /tmp (a checkout or virtual environment there) stay visible, read-only.
    """
    root = str(workdir.resolve())
    command = [
        bwrap,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",  # noqa: S108 - a private, empty /tmp inside the sandbox
    ]  # fmt: skip
    for top in _tmp_tops(argv, search_path):
        command += ["--ro-bind", top, top]
    for path in (workdir, *writable):  # after --tmpfs /tmp, so a worktree under /tmp stays visible
        resolved = str(path.resolve())
        command += ["--bind", resolved, resolved]
    command += [
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",
        "--chdir", root,
        "--",
        *argv,
    ]  # fmt: skip
    return command


class BwrapSandbox:
    """Runs commands under bubblewrap: read-only root, the worktree writable, no network (module docstring)."""

    def __init__(self, bwrap: str | None = None, *, writable: Sequence[Path] = ()) -> None:
        self.bwrap = bwrap or shutil.which("bwrap") or "bwrap"
        self.writable = tuple(writable)

    @property
    def name(self) -> str:
        return "bwrap"

    description = "bwrap (bubblewrap: no network, only the worktree writable)"

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        output_cap: int = 16_000,
    ) -> CommandResult:
        final_env = scrubbed_environment(os.environ if env is None else env)
        if argv and find_executable(argv[0], cwd=cwd, env=final_env) is None:
            return CommandResult(
                argv=tuple(argv),
                cwd=str(cwd),
                exit_code=None,
                error=f"cannot start {argv[0]!r}: no such executable",
                sandbox=self.name,
            )
        command = bwrap_command(
            self.bwrap, argv, workdir=cwd, writable=self.writable, search_path=final_env.get("PATH")
        )
        return run_process(
            command, argv=argv, cwd=cwd, timeout_s=timeout_s, env=final_env, output_cap=output_cap, sandbox=self.name
        )
