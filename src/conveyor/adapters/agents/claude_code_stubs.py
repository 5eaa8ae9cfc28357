"""The empty placeholder files Claude Code's command sandbox leaves in the worktree, and their careful removal.

Why they exist (read from the bundled CLI, Claude Code 2.1.x; upstream anthropics/claude-code#78072): with
``CLAUDE_CODE_SUBPROCESS_ENV_SCRUB=1`` (scrub mode, which is how the backend keeps the API key out of the commands the
agent runs) the CLI runs every subprocess in bubblewrap, with a deny-write list that includes, in its starting
directory, the files a command could plant to make a later npm / yarn / bun / git run execute code: ``package.json``,
the lock files, ``.npmrc``, ``.yarnrc``, ``bunfig.toml``, ``.gitmodules`` and the ``.env*`` files. A read-only bind
mount needs an existing target, so at startup the CLI creates each of them as an empty file (and the directories
``.claude/commands``, ``.claude/agents`` and ``node_modules/.bin``), then hides the files from git by appending them
to ``<cwd>/.git/info/exclude`` under ``# claude-code scrub-mode stubs``. In a linked worktree (``git worktree add``,
which is how Conveyor lays out tickets) ``.git`` is a file, not a directory: that append fails silently and the stubs
are untracked files that ``git add -A`` would commit with the agent's work.

Nothing but scrub mode itself turns them off: no CLI option, setting (the SDK's ``sandbox``/``settings`` configure
the other, opt-in Bash sandbox) or environment variable skips the stubs, and the sandbox needs them while the
session runs. So the backend prevents them where scrub mode has nothing to isolate (a session without Bash does not
enable it, see :func:`scrub_mode`), and after a session with Bash removes exactly the stubs the CLI made
(:func:`remove_stubs`), never anything that could be work.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Collection, Sequence
from pathlib import Path

# The files the CLI creates in its starting directory in scrub mode (its deny-mount targets), by name.
ENV_FILES = (
    ".env",
    ".env.local",
    ".env.development",
    ".env.development.local",
    ".env.test",
    ".env.test.local",
    ".env.production",
    ".env.production.local",
)
SCRUB_STUBS: tuple[str, ...] = (
    "bunfig.toml",
    "package.json",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".gitmodules",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    *ENV_FILES,
)
_GIT_TIMEOUT_S = 30.0


def scrub_mode(tools: Sequence[str], *, isolate_commands: bool) -> bool:
    """Whether a session runs the CLI in scrub mode: only when the agent can run a command (Bash) to isolate.

    Without Bash the agent starts no process (Read/Write/Edit/Glob/Grep run inside the CLI, and the hooks are
    Conveyor's own callbacks), so scrub mode would isolate nothing and only leave its stubs in the worktree.
    """
    return isolate_commands and "Bash" in tools


def existing_stubs(workdir: Path) -> frozenset[str]:
    """The stub names already present in ``workdir`` (as anything, even a dangling symlink) before a session."""
    return frozenset(name for name in SCRUB_STUBS if os.path.lexists(workdir / name))


def remove_stubs(workdir: Path, *, existed: Collection[str], written: Collection[str]) -> list[str]:
    """Remove the stubs a scrub-mode session left in ``workdir``; the names removed.

    A file is removed only when ALL of these hold, so nothing that could be work is ever deleted: its name is one
    of the CLI's stubs (:data:`SCRUB_STUBS`) at the worktree root; it did not exist before the session
    (``existed``, from :func:`existing_stubs`); the agent's own Write/Edit calls never targeted it (``written``,
    worktree-relative paths the PreToolUse hook allowed: an agent may well write an empty ``.env``); it is a regular
    file (not a symlink) and empty; and git does not track it. (A command cannot have written one: they are
    read-only mounts inside the sandbox for the whole session.) When git cannot say what is tracked, nothing is
    removed. The directories the CLI makes are left alone: git does not see empty directories.
    """
    candidates = [name for name in SCRUB_STUBS if name not in existed and name not in written and _empty(workdir, name)]
    if not candidates:
        return []
    tracked = _tracked(workdir, candidates)
    if tracked is None:
        return []
    removed: list[str] = []
    for name in candidates:
        if name in tracked or not _empty(workdir, name):
            continue
        try:
            (workdir / name).unlink()
        except OSError:
            continue
        removed.append(name)
    return removed


def _empty(workdir: Path, name: str) -> bool:
    """``workdir/name`` is an empty regular file (a symlink, directory or anything else is not)."""
    try:
        info = os.lstat(workdir / name)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def _tracked(workdir: Path, names: Sequence[str]) -> frozenset[str] | None:
    """Which of ``names`` (paths at the worktree root) git tracks; None when git cannot tell."""
    try:
        done = subprocess.run(
            ["git", "--literal-pathspecs", "ls-files", "-z", "--cached", "--", *names],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return frozenset(path for path in done.stdout.split("\0") if path)
