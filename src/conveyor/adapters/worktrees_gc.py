"""``gc.auto=0`` in the repository's local config while a run's worktrees are busy (ARCHITECTURE.md §4, §9).

Why: every worktree of a repository shares its refs, objects and packed-refs file. Git runs ``git gc --auto`` on
its own after commits, merges and rebases; with several tickets committing at once in their worktrees, such a gc
(detached into the background by default) packs refs and repacks objects under the others' feet: a concurrent
commit or ``git worktree add`` then fails on a held ``packed-refs.lock`` or ref lock, and gc may also prune the
administrative files of a worktree whose directory it cannot see at that instant. So while a run holds worktrees,
automatic gc is off; a person or a later ``git gc`` cleans up when nothing runs.

Only the repository's local config (.git/config) changes, never the user's or the system's, and only for the
duration of :func:`runs_without_gc`: the previous local value is restored (or the key removed when there was none).
The previous value is also kept in .conveyor/gc-auto.json until then, so a run that crashed inside the context is
repaired by the next one: it restores the value saved by the crashed run, not the ``0`` that run left behind.
Contexts nest and may overlap across threads (a count per repository): the outermost exit restores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.adapters.atomic import write_json
from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.worktrees_ledger import CONVEYOR_DIR, LOCKS, ensure_conveyor_dir, repo_key

GC_AUTO = "gc.auto"
SAVED_FILE = "gc-auto.json"

_depth: dict[str, int] = {}  # open contexts per repository
_previous: dict[str, str | None] = {}  # the local value to restore, per repository


def _saved_previous(path: Path) -> tuple[bool, str | None]:
    """(found, value) from the file a run that did not restore gc.auto left behind."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, None
    except (OSError, json.JSONDecodeError):
        return False, None  # unreadable: the current local value is the best we know
    previous = data.get("previous") if isinstance(data, dict) else None
    return True, previous if isinstance(previous, str) else None


@contextmanager
def runs_without_gc(repo: Path) -> Iterator[None]:
    """Turn automatic gc off in ``repo``'s local config inside the block; restore the previous value after it."""
    key = repo_key(repo)
    lock = LOCKS.get(key, "git")
    saved_file = repo / CONVEYOR_DIR / SAVED_FILE
    with lock:
        if _depth.get(key, 0) == 0:
            git = GitRepo(repo)
            found, previous = _saved_previous(saved_file)
            if not found:
                previous = git.config_get(GC_AUTO)
                ensure_conveyor_dir(repo)
                write_json(saved_file, {"key": GC_AUTO, "previous": previous})
            git.config_set(GC_AUTO, "0")
            _previous[key] = previous
        _depth[key] = _depth.get(key, 0) + 1
    try:
        yield
    finally:
        with lock:
            _depth[key] -= 1
            if _depth[key] == 0:
                del _depth[key]
                previous = _previous.pop(key)
                git = GitRepo(repo)
                if previous is None:
                    git.config_unset(GC_AUTO)
                else:
                    git.config_set(GC_AUTO, previous)
                saved_file.unlink(missing_ok=True)
