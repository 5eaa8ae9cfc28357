"""Tree plumbing for the github forge: code from one commit, Conveyor's tracking files from another.

GitHub's main only receives the code of a ticket; Conveyor's tracking files travel on ``conveyor/state``
(ARCHITECTURE.md §4). So the commit a PR proposes is the ticket's code over GitHub's main's tracking files, and
local main, which carries both, is merged with GitHub's main keeping the local tracking files. Everything is
built in a temporary index: the checkout's index, files and refs are never touched here.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.adapters.forges.local import REPLAY_TRACES
from conveyor.adapters.git_repo import GitRepoError
from conveyor.domain.tracking import TRACKING_FILES, TRACKING_PREFIXES, is_tracking_path

TRACKING_SPECS = (*sorted(TRACKING_FILES), *(p.rstrip("/") for p in TRACKING_PREFIXES))


def git(
    repo: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[int, bytes]:
    """Run git in ``repo`` (bytes in and out, for ``-z`` lists); GitRepoError on an exit status outside ``ok``."""
    done = subprocess.run(["git", *args], cwd=repo, input=stdin, env=env, capture_output=True, check=False)
    if done.returncode not in ok:
        error = done.stderr.decode(errors="replace").strip()
        raise GitRepoError(f"{repo}: git {' '.join(args)} failed ({done.returncode}): {error}")
    return done.returncode, done.stdout


@contextmanager
def scratch_index() -> Iterator[dict[str, str]]:
    """An environment whose git commands use a temporary index of their own."""
    with tempfile.TemporaryDirectory(prefix="conveyor-github-index-") as folder:
        yield {**os.environ, "GIT_INDEX_FILE": str(Path(folder) / "index")}


def compose_tree(repo: Path, code_from: str, tracking_from: str) -> str:
    """A tree with every code path of ``code_from`` and every tracking path of ``tracking_from``."""
    with scratch_index() as env:
        git(repo, "read-tree", code_from, env=env)
        git(repo, "rm", "--cached", "-r", "-q", "--ignore-unmatch", "--", *TRACKING_SPECS, env=env)
        _, entries = git(repo, "ls-tree", "-r", "-z", "--full-tree", tracking_from, "--", *TRACKING_SPECS)
        if entries:
            git(repo, "update-index", "-z", "--index-info", stdin=entries, env=env)
        return git(repo, "write-tree", env=env)[1].decode().strip()


def with_working_tracking(repo: Path, tree: str) -> str:
    """``tree`` with the tracking files as they are in the checkout's working tree (what the tracker wrote)."""
    specs = working_tracking_specs(repo)
    if not specs:
        return tree
    with scratch_index() as env:
        git(repo, "read-tree", tree, env=env)
        git(repo, "add", "-A", "--", *specs, env=env)
        return git(repo, "write-tree", env=env)[1].decode().strip()


def working_tracking_specs(repo: Path) -> list[str]:
    """Pathspecs of the tracking files present in the working tree (replay traces excluded, as the local forge does)."""
    specs = [p for p in sorted(TRACKING_FILES) if (repo / p).exists()]
    specs += [p.rstrip("/") for p in TRACKING_PREFIXES if p != ".conveyor/" and (repo / p).exists()]
    ignored = git(repo, "check-ignore", "--quiet", "--", REPLAY_TRACES, ok=(0, 1))[0] == 0
    if specs and not ignored:
        specs.append(f":(exclude){REPLAY_TRACES}")
    return specs


def merge_keeping_tracking(repo: Path, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """Merge two commits in memory; tracking paths are ``ours`` whatever ``theirs`` did to them.

    Returns (tree, []) or (None, the code paths in conflict). A conflict in a tracking path is not one: the
    local tracking files are the newer record (GitHub's main only has what an earlier release PR brought).
    """
    status, out = git(repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs, ok=(0, 1))
    fields = out.decode().split("\0")
    conflicts = sorted({name for name in fields[1:] if name and not is_tracking_path(name)}) if status == 1 else []
    if conflicts:
        return None, conflicts
    return compose_tree(repo, fields[0].strip(), ours), []
