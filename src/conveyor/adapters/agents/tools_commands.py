"""The run_command policy: which argv lists the implementer may run.

An argv is run as a list, never through a shell, so ``;``, ``&&``, ``|``, ``$(...)`` and backticks are plain
characters inside one argument. On top of that, :func:`check_argv` refuses, whatever the model asks:

- an argv that does not start with one of the allow-list's prefixes (exact element match);
- an executable given as a path that leads out of the worktree (``/bin/rm``, ``../bin/tool``);
- interpreter and runner escapes — ``python -c``, ``sh -c``, ``node -e``, ``perl -e``, ``env``, ``xargs``,
  ``find -exec``, ``git -c`` and their relatives — unless the escape is written out in the allowed prefix
  itself (an allow-list entry ``[python, -c]`` permits ``python -c ...``);
- an argument that is a path (it contains ``/`` or starts with ``.``; also the value of ``--opt=value`` and
  ``-Ovalue``) leading out of the worktree or into ``.git``.

Interpreters and runners are recognised at any position (``uv run python -c ...``); a plain argument that
happens to be such a word (``pytest -k env``) is refused too, and can be attached to its option instead
(``--keyword=env``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from conveyor.adapters.agents.tools_paths import Confinement, RefusedError

MAX_ARGS = 256
MAX_ARG_CHARS = 16_000

_PYTHON = re.compile(r"^(python|pypy|pythonw)(\d+(\.\d+)?)?$")
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "rbash", "busybox"})
# interpreter -> options that take inline code (a short-option cluster containing the letter counts too)
_INLINE_CODE: dict[str, tuple[frozenset[str], str]] = {
    "node": (frozenset({"-e", "--eval", "-p", "--print"}), "ep"),
    "nodejs": (frozenset({"-e", "--eval", "-p", "--print"}), "ep"),
    "bun": (frozenset({"-e", "--eval", "-p", "--print"}), ""),
    "deno": (frozenset({"eval"}), ""),
    "perl": (frozenset({"-e", "-E"}), "eE"),
    "ruby": (frozenset({"-e"}), "e"),
    "php": (frozenset({"-r"}), "r"),
    "lua": (frozenset({"-e"}), "e"),
    "luajit": (frozenset({"-e"}), "e"),
    "rscript": (frozenset({"-e"}), "e"),
    "osascript": (frozenset({"-e"}), "e"),
    "tclsh": (frozenset(), ""),
}
# Programs whose whole job is running another command or inline code: an escape wherever they appear.
_RUNNERS = frozenset(
    {
        "env",
        "xargs",
        "sudo",
        "doas",
        "su",
        "runuser",
        "pkexec",
        "nohup",
        "timeout",
        "nice",
        "ionice",
        "chrt",
        "taskset",
        "stdbuf",
        "setsid",
        "setpriv",
        "chroot",
        "unshare",
        "nsenter",
        "bwrap",
        "firejail",
        "systemd-run",
        "strace",
        "ltrace",
        "gdb",
        "script",
        "watch",
        "parallel",
        "flock",
        "time",
        "command",
        "exec",
        "eval",
        "ssh",
        "awk",
        "gawk",
        "mawk",
        "nawk",
        "sed",
        "expect",
        "docker",
        "podman",
    }
)
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _base(token: str) -> str:
    return token.rsplit("/", 1)[-1].lower()


def _python_inline(args: Sequence[str]) -> int | None:
    """Index (in ``args``) of a ``-c`` among a Python interpreter's own options, else None."""
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--" or not token.startswith("-") or token == "-":
            return None  # a script or stdin: the interpreter's options end here
        skip_value = token == "--check-hash-based-pycs"
        if not token.startswith("--"):
            for pos, letter in enumerate(token[1:], start=1):
                if letter == "c":
                    return index
                if letter == "m":
                    return None  # -m module: the rest are the module's arguments
                if letter in "WX":
                    skip_value = pos == len(token) - 1  # -W value / -Wvalue
                    break
        index += 2 if skip_value else 1
    return None


def _shell_inline(args: Sequence[str]) -> int | None:
    for index, token in enumerate(args):
        if token in {"--command", "--init-command"}:
            return index
        if token == "--" or not token.startswith("-") or token == "-":
            return None
        if not token.startswith("--") and "c" in token[1:]:
            return index
    return None


def _options_inline(args: Sequence[str], flags: frozenset[str], letters: str) -> int | None:
    for index, token in enumerate(args):
        if token in flags or any(token.startswith(flag + "=") for flag in flags if flag.startswith("--")):
            return index
        if letters and token.startswith("-") and not token.startswith("--") and set(token[1:]) & set(letters):
            return index
    return None


def find_escape(argv: Sequence[str]) -> tuple[int, str, bool] | None:
    """The first interpreter or runner escape in ``argv``: (index of its token, what it is, is it a runner word)."""
    return next(iter(find_escapes(argv)), None)


def find_escapes(argv: Sequence[str]) -> list[tuple[int, str, bool]]:
    """Every interpreter or runner escape in ``argv``, in order (see :func:`find_escape`)."""
    found: list[tuple[int, str, bool]] = []
    for start, token in enumerate(argv):
        base = _base(token)
        rest = argv[start + 1 :]
        hit: int | None = None
        if token.startswith("-") or "=" in token:
            continue
        if _PYTHON.match(base):
            hit = _python_inline(rest)
            label = f"{base} -c (inline code)"
        elif base in _SHELLS:
            hit = _shell_inline(rest)
            label = f"{base} -c (inline shell code)"
        elif base in {"npx", "npm", "pnpm", "yarn"}:
            hit = _npm_call(base, rest)
            label = f"{base} --call (inline shell code)"
        elif base in _INLINE_CODE:
            flags, letters = _INLINE_CODE[base]
            hit = _options_inline(rest, flags, letters)
            label = f"{base} {rest[hit] if hit is not None else ''} (inline code)"
        elif base == "find":
            hit = next((i for i, t in enumerate(rest) if t in _FIND_EXEC), None)
            label = f"find {rest[hit] if hit is not None else ''} (runs commands)"
        elif base == "git":
            hit = _git_escape(rest)
            label = f"git {rest[hit] if hit is not None else ''} (can run other programs)"
        elif token.lower() in _RUNNERS:
            found.append((start, f"{token} (runs other commands)", True))
        if hit is not None:
            found.append((start + 1 + hit, label, False))
    return found


def _npm_call(base: str, args: Sequence[str]) -> int | None:
    """``npx -c CMD`` / ``npm exec --call CMD``: the launcher's own -c/--call, before the package name."""
    start = 0
    if base != "npx":
        if not args or args[0] not in {"exec", "x", "dlx"}:
            return None
        start = 1
    for index in range(start, len(args)):
        token = args[index]
        if token in {"-c", "--call"} or token.startswith("--call="):
            return index
        if not token.startswith("-"):
            return None
    return None


_GIT_VALUE_OPTIONS = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"})
_GIT_ESCAPE_OPTIONS = ("--upload-pack", "--receive-pack", "--exec", "--extcmd", "--ext-diff")


def _git_escape(args: Sequence[str]) -> int | None:
    """git's own ``-c``/``--config-env``/``--exec-path``, or an option of a subcommand that runs a program."""
    index = 0
    while index < len(args):  # global options, before the subcommand
        token = args[index]
        if token in {"-c", "--config-env", "--exec-path"} or token.startswith(("--config-env=", "--exec-path=")):
            return index
        if not token.startswith("-"):
            break
        index += 2 if token in _GIT_VALUE_OPTIONS else 1
    subcommand = args[index] if index < len(args) else ""
    for offset, token in enumerate(args[index + 1 :], start=index + 1):
        if token.startswith(_GIT_ESCAPE_OPTIONS) or (subcommand == "rebase" and token in {"-x", "--exec"}):
            return offset
        if subcommand in {"bisect", "submodule"} and token in {"run", "foreach"}:
            return offset
    if subcommand in {"filter-branch", "difftool", "mergetool"}:
        return index
    return None


def matching_prefix(argv: Sequence[str], allowed: Sequence[Sequence[str]]) -> Sequence[str] | None:
    """The longest allow-list prefix ``argv`` starts with (exact element match)."""
    best: Sequence[str] | None = None
    for prefix in allowed:
        fits = bool(prefix) and len(prefix) <= len(argv) and list(argv[: len(prefix)]) == list(prefix)
        if fits and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def _path_candidates(token: str) -> list[str]:
    """The parts of an argument that may name a path: itself, ``--opt=VALUE``, ``-OVALUE``, ``@FILE``."""
    candidates: list[str] = []
    body = token[1:] if token.startswith("@") else token
    if not body.startswith("-"):
        candidates.append(body)
    if "=" in body:
        candidates.append(body.split("=", 1)[1])
    if body.startswith("-") and not body.startswith("--") and len(body) > 2:
        candidates.append(body[2:])
    return [c for c in candidates if c and ("/" in c or c.startswith("."))]


def check_path_argument(token: str, confinement: Confinement, *, index: int) -> None:
    for candidate in _path_candidates(token):
        try:
            confinement.resolve(candidate, what=f"argument {index}")
        except RefusedError as exc:
            raise RefusedError(f"{exc} ({token!r})") from None


def describe_allowed(allowed: Sequence[Sequence[str]]) -> str:
    return "; ".join(" ".join(prefix) for prefix in allowed) if allowed else "(none: no command may be run)"


def check_argv(argv: object, *, allowed: Sequence[Sequence[str]], confinement: Confinement) -> list[str]:
    """``argv`` as a list of strings when the policy allows it, else RefusedError saying why."""
    if not isinstance(argv, list) or not argv:
        raise RefusedError("argv must be a non-empty list of strings, e.g. ['python', '-m', 'pytest', '-q']")
    if not all(isinstance(token, str) for token in argv):
        raise RefusedError("every argv element must be a string")
    tokens: list[str] = list(argv)
    if len(tokens) > MAX_ARGS or any(len(token) > MAX_ARG_CHARS for token in tokens):
        raise RefusedError(f"argv is too long (at most {MAX_ARGS} arguments of {MAX_ARG_CHARS} characters)")
    if any("\x00" in token for token in tokens):
        raise RefusedError("argv contains a NUL byte")
    program = tokens[0]
    if not program:
        raise RefusedError("argv[0] is empty")
    if "/" in program:
        try:
            confinement.resolve(program, what="the executable")
        except RefusedError as exc:
            raise RefusedError(f"{exc}: only programs on PATH or inside the worktree may run") from None
    prefix = matching_prefix(tokens, allowed)
    if prefix is None:
        raise RefusedError(
            f"{' '.join(tokens[:4])!r}... is not allowed; allowed command prefixes: {describe_allowed(allowed)}"
        )
    escape = next((e for e in find_escapes(tokens) if e[0] >= len(prefix)), None)  # not written out in the prefix
    if escape is not None:
        hint = " If it is a plain argument, attach it to its option (e.g. --keyword=env)." if escape[2] else ""
        raise RefusedError(
            f"{escape[1]} is refused: argv element {escape[0]} ({tokens[escape[0]]!r}) would run code that is not on "
            f"the allow-list.{hint}"
        )
    for index, token in enumerate(tokens[len(prefix) :], start=len(prefix)):
        check_path_argument(token, confinement, index=index)
    return tokens
