"""Path confinement for the implementer's tools: every path resolves inside the worktree, or is refused.

RefusedError, whatever the model asks: absolute paths, ``..`` escapes, symlinks (anywhere along the path)
that lead out of the worktree, device files, FIFOs and sockets, NUL bytes, over-long paths, and anything in
a ``.git`` directory or file (the agent must not rewrite history or hooks). Checks run before any change,
so a refused call leaves the filesystem as it was.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255
# Directories that are never listed, searched or snapshotted (they are not the project's source).
SKIP_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".conveyor",
    }
)


class RefusedError(Exception):
    """A tool call broke a rule; the message is what the model sees."""


@dataclass(frozen=True)
class Resolved:
    """A confined path: ``path`` is absolute and symlink-free, ``rel`` is relative to the worktree root."""

    path: Path
    rel: str


def _is_git(part: str) -> bool:
    return part.casefold() == ".git"


class Confinement:
    """Resolves the model's paths against one worktree root."""

    def __init__(self, workdir: Path) -> None:
        self.root = Path(os.path.realpath(workdir))
        self._prefix = str(self.root).rstrip("/") + "/"

    # -- resolution ------------------------------------------------------------------------------------------

    def inside(self, real: str) -> bool:
        return real == str(self.root) or real.startswith(self._prefix)

    def lexical(self, raw: object, *, what: str = "path") -> str:
        """The normalised relative form of ``raw``, or RefusedError (no filesystem access)."""
        if not isinstance(raw, str):
            raise RefusedError(f"{what} must be a string")
        if "\x00" in raw:
            raise RefusedError(f"{what} contains a NUL byte")
        if not raw.strip():
            raise RefusedError(f"{what} is empty")
        if len(raw) > MAX_PATH_CHARS or any(len(part) > MAX_NAME_CHARS for part in raw.split("/")):
            raise RefusedError(f"{what} is too long (at most {MAX_PATH_CHARS} characters, {MAX_NAME_CHARS} per name)")
        if raw.startswith("/"):
            raise RefusedError(f"{what} {raw!r} is absolute; give a path relative to the worktree root")
        norm = posixpath.normpath(raw)
        if norm == ".." or norm.startswith("../"):
            raise RefusedError(f"{what} {raw!r} leads out of the worktree")
        if any(_is_git(part) for part in norm.split("/")):
            raise RefusedError(f"{what} {raw!r} is in .git, which is off limits")
        return norm

    def resolve(self, raw: object, *, what: str = "path") -> Resolved:
        """Resolve ``raw`` inside the worktree (following symlinks that stay inside), or RefusedError."""
        norm = self.lexical(raw, what=what)
        real = os.path.realpath(self.root / norm)
        if not self.inside(real):
            raise RefusedError(f"{what} {raw!r} leads out of the worktree through a symlink")
        rel = os.path.relpath(real, self.root)
        if any(_is_git(part) for part in rel.split("/")):
            raise RefusedError(f"{what} {raw!r} leads into .git, which is off limits")
        return Resolved(Path(real), "." if rel == "." else rel)

    def existing(self, raw: object, *, what: str = "path") -> tuple[Resolved, os.stat_result]:
        """An existing regular file or directory inside the worktree, or RefusedError."""
        target = self.resolve(raw, what=what)
        try:
            info = os.lstat(target.path)
        except FileNotFoundError:
            raise RefusedError(f"{what} {raw!r} does not exist") from None
        except OSError as exc:
            raise RefusedError(f"{what} {raw!r} cannot be read: {exc.strerror}") from None
        if stat.S_ISLNK(info.st_mode):  # a symlink loop realpath could not resolve
            raise RefusedError(f"{what} {raw!r} is a symlink that does not resolve")
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            raise RefusedError(f"{what} {raw!r} is not a regular file (device, FIFO or socket)")
        return target, info

    def file(self, raw: object, *, what: str = "path") -> Resolved:
        target, info = self.existing(raw, what=what)
        if stat.S_ISDIR(info.st_mode):
            raise RefusedError(f"{what} {raw!r} is a directory, not a file")
        return target

    def directory(self, raw: object, *, what: str = "path") -> Resolved:
        target, info = self.existing(raw, what=what)
        if not stat.S_ISDIR(info.st_mode):
            raise RefusedError(f"{what} {raw!r} is not a directory")
        return target

    def writable(self, raw: object, *, what: str = "path") -> Resolved:
        """A path a file may be written to: absent or a regular file, with parents that are (or can be) dirs."""
        target = self.resolve(raw, what=what)
        if target.rel == ".":
            raise RefusedError(f"{what} {raw!r} is the worktree root, not a file")
        try:
            info = os.lstat(target.path)
        except FileNotFoundError:
            info = None
        except NotADirectoryError:
            raise RefusedError(f"{what} {raw!r}: one of its parents is a file, not a directory") from None
        except OSError as exc:
            raise RefusedError(f"{what} {raw!r} cannot be written: {exc.strerror}") from None
        if info is not None:
            if stat.S_ISDIR(info.st_mode):
                raise RefusedError(f"{what} {raw!r} is a directory, not a file")
            if not stat.S_ISREG(info.st_mode):
                raise RefusedError(f"{what} {raw!r} is not a regular file (device, FIFO, socket or broken symlink)")
        parent = target.path.parent
        while not parent.exists():  # the first existing ancestor must be a directory (it is inside: realpath)
            parent = parent.parent
        if not parent.is_dir() or parent.is_symlink():
            raise RefusedError(f"{what} {raw!r}: {os.path.relpath(parent, self.root)} is a file, not a directory")
        return target

    # -- I/O ---------------------------------------------------------------------------------------------------

    def read_bytes(self, target: Resolved, *, limit: int) -> bytes:
        """The file's bytes (no symlink followed, never blocking on a FIFO); RefusedError when over ``limit``."""
        try:
            fd = os.open(target.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise RefusedError(f"{target.rel} cannot be read: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise RefusedError(f"{target.rel} is not a regular file")
            if info.st_size > limit:
                raise RefusedError(f"{target.rel} is too large ({info.st_size} bytes; at most {limit})")
            return handle.read(limit + 1)

    def write_bytes(self, target: Resolved, data: bytes) -> bool:
        """Write ``data`` (creating parent directories inside the worktree); False when it was already so."""
        try:
            if os.lstat(target.path).st_size == len(data) and self.read_bytes(target, limit=len(data)) == data:
                return False
        except FileNotFoundError:
            pass
        target.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.inside(os.path.realpath(target.path.parent)):  # pragma: no cover - checked by writable()
            raise RefusedError(f"{target.rel} leads out of the worktree")
        try:
            fd = os.open(target.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RefusedError(f"{target.rel} is a symlink") from None
            raise RefusedError(f"{target.rel} cannot be written: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise RefusedError(f"{target.rel} is not a regular file")
            handle.truncate(0)
            handle.write(data)
        return True

    # -- walking -----------------------------------------------------------------------------------------------

    def walk_files(self, start: Resolved) -> Iterator[Resolved]:
        """Regular files under ``start`` (sorted; SKIP_DIRS pruned; symlinks only when they stay inside)."""
        if start.path.is_file():
            yield start
            return
        for dirpath, dirnames, filenames in os.walk(start.path):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not _is_git(d))
            for name in sorted(filenames):
                if _is_git(name):
                    continue
                full = f"{dirpath}/{name}"
                try:
                    info = os.lstat(full)
                except OSError:
                    continue
                if stat.S_ISLNK(info.st_mode):
                    real = os.path.realpath(full)
                    rel_real = os.path.relpath(real, self.root)
                    if not self.inside(real) or not Path(real).is_file() or any(map(_is_git, rel_real.split("/"))):
                        continue
                elif not stat.S_ISREG(info.st_mode):
                    continue
                yield Resolved(Path(full), os.path.relpath(full, self.root))

    def snapshot(self, *, limit: int = 50_000) -> dict[str, tuple[int, int]] | None:
        """(mtime_ns, size) of every file, to see what a command changed; None when there are too many."""
        seen: dict[str, tuple[int, int]] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not _is_git(d)]
            for name in filenames:
                full = f"{dirpath}/{name}"
                try:
                    info = os.lstat(full)
                except OSError:
                    continue
                seen[os.path.relpath(full, self.root)] = (info.st_mtime_ns, info.st_size)
                if len(seen) > limit:
                    return None
        return seen


def changed_between(before: dict[str, tuple[int, int]] | None, after: dict[str, tuple[int, int]] | None) -> list[str]:
    if before is None or after is None:
        return []
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
