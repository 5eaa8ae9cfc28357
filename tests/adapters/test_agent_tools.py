"""The implementer's tools: the escape and injection corpus (every case refused, nothing changed) and the
positive cases (list, read, search, write, edit, scratchpad, finish, run)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.adapters.agents.tools import ToolDispatcher, ToolOutcome, fingerprint
from conveyor.adapters.agents.tools_commands import check_argv, find_escape
from conveyor.adapters.agents.tools_paths import Confinement, RefusedError
from conveyor.adapters.sandbox.local import LocalSandbox
from conveyor.adapters.sandbox.select import bwrap_problem, select_sandbox
from conveyor.domain.agent import ToolName
from conveyor.domain.command import CommandResult

APP = 'def greet(name):\n    return f"hello {name}"\n\n\nGREETING = "hello"\n'
TWICE = "x = 1\nx = 1\n"
ALLOWED = [
    ["python", "-m", "pytest"],
    ["pytest"],
    ["python"],
    ["python3"],
    ["sh"],
    ["bash"],
    ["node"],
    ["perl"],
    ["find"],
    ["cat"],
    ["echo"],
    ["git"],
    ["uv", "run"],
]


class FakeSandbox:
    """Records what it was asked to run; runs nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    @property
    def name(self) -> str:
        return "fake"

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        output_cap: int = 16_000,
    ) -> CommandResult:
        self.calls.append(tuple(argv))
        return CommandResult(argv=tuple(argv), cwd=str(cwd), exit_code=0, output="ran\n", sandbox=self.name)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("top secret\n")
    (path / "plugin.py").write_text("")
    return path


@pytest.fixture
def worktree(tmp_path: Path, outside: Path) -> Path:
    root = tmp_path / "wt"
    (root / "src").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "docs").mkdir()
    (root / ".git" / "hooks").mkdir(parents=True)  # what the tests need of a repository, without git's cost
    (root / ".git" / "config").write_text("[core]\n\trepositoryformatversion = 0\n")
    (root / "src" / "app.py").write_text(APP)
    (root / "src" / "twice.py").write_text(TWICE)
    (root / "tests" / "test_app.py").write_text(
        "from src.app import greet\n\ndef test_greet():\n    assert greet('x')\n"
    )
    (root / "docs" / "notes.md").write_text("# Notes\nhello world\n")
    (root / "data.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (root / "etc_link").symlink_to("/etc")
    (root / "devzero").symlink_to("/dev/zero")
    (root / "outdir").symlink_to(outside)
    (root / "secret_link.txt").symlink_to(outside / "secret.txt")
    (root / "gitlink").symlink_to(".git")
    (root / "inner_link.py").symlink_to("src/app.py")
    (root / "loop").symlink_to("loop")
    os.mkfifo(root / "pipe")
    return root


def make(worktree: Path, sandbox: Any = None, **kwargs: Any) -> ToolDispatcher:
    return ToolDispatcher(
        worktree,
        sandbox=sandbox if sandbox is not None else FakeSandbox(),
        allowed_commands=kwargs.pop("allowed_commands", ALLOWED),
        scratchpad=Path("docs/scratchpads/T-1.md"),
        command_timeout_s=kwargs.pop("command_timeout_s", 20),
        **kwargs,
    )


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (symlinks not followed): type, mode, content hash or link target."""
    seen: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            info = full.lstat()
            rel = str(full.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                seen[rel] = f"link:{full.readlink()}"
            elif stat.S_ISREG(info.st_mode):
                seen[rel] = f"file:{oct(info.st_mode)}:{hashlib.sha256(full.read_bytes()).hexdigest()}"
            elif stat.S_ISDIR(info.st_mode):
                seen[rel] = f"dir:{oct(info.st_mode)}"
            else:
                seen[rel] = f"other:{oct(info.st_mode)}"
    return seen


# -- the escape and injection corpus -------------------------------------------------------------------------

LONG_PATH = "a/" * 600 + "x.txt"
CORPUS: list[tuple[str, str, object, str]] = [
    # (case id, tool, arguments, a fragment of the refusal the model sees)
    ("absolute-path", "read_file", {"path": "/etc/passwd"}, "absolute"),
    ("absolute-dev-zero", "read_file", {"path": "/dev/zero"}, "absolute"),
    ("dotdot", "read_file", {"path": "../outside/secret.txt"}, "out of the worktree"),
    ("dotdot-in-the-middle", "read_file", {"path": "src/../../outside/secret.txt"}, "out of the worktree"),
    ("dotdot-write", "write_file", {"path": "../outside/new.txt", "content": "x"}, "out of the worktree"),
    ("symlink-to-etc", "read_file", {"path": "etc_link/passwd"}, "symlink"),
    ("symlink-to-etc-write", "write_file", {"path": "etc_link/conveyor-evil", "content": "x"}, "symlink"),
    ("symlinked-dir-out", "read_file", {"path": "outdir/secret.txt"}, "symlink"),
    ("symlinked-dir-out-write", "write_file", {"path": "outdir/new.txt", "content": "x"}, "symlink"),
    ("symlinked-dir-out-list", "list_files", {"path": "outdir"}, "symlink"),
    ("symlinked-file-out", "read_file", {"path": "secret_link.txt"}, "symlink"),
    ("symlinked-file-out-edit", "edit_file", {"path": "secret_link.txt", "old": "top", "new": "no"}, "symlink"),
    ("symlink-to-dev-zero", "read_file", {"path": "devzero"}, "symlink"),
    ("symlink-loop", "read_file", {"path": "loop"}, "symlink"),
    ("fifo-read", "read_file", {"path": "pipe"}, "not a regular file"),
    ("fifo-write", "write_file", {"path": "pipe", "content": "x"}, "not a regular file"),
    ("git-config-read", "read_file", {"path": ".git/config"}, ".git"),
    ("git-hook-write", "write_file", {"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\nexit 0\n"}, ".git"),
    ("git-config-edit", "edit_file", {"path": ".git/config", "old": "[core]", "new": "[x]"}, ".git"),
    ("git-list", "list_files", {"path": ".git"}, ".git"),
    ("git-via-dotdot", "write_file", {"path": "src/../.git/config", "content": "x"}, ".git"),
    ("git-via-symlink", "read_file", {"path": "gitlink/config"}, ".git"),
    ("git-search", "search", {"pattern": "core", "path": ".git"}, ".git"),
    ("nul-byte", "read_file", {"path": "src/app.py\x00.txt"}, "NUL"),
    ("very-long-path", "write_file", {"path": LONG_PATH, "content": "x"}, "too long"),
    ("very-long-name", "write_file", {"path": "x" * 300, "content": "x"}, "too long"),
    ("empty-path", "read_file", {"path": ""}, "empty"),
    ("dir-as-file", "write_file", {"path": "src", "content": "x"}, "directory"),
    ("root-as-file", "write_file", {"path": ".", "content": "x"}, "root"),
    ("file-as-dir", "write_file", {"path": "src/app.py/child.py", "content": "x"}, "not a directory"),
    ("binary-read", "read_file", {"path": "data.bin"}, "binary"),
    ("binary-edit", "edit_file", {"path": "data.bin", "old": "PNG", "new": "GIF"}, "binary"),
    ("edit-old-absent", "edit_file", {"path": "src/app.py", "old": "goodbye", "new": "x"}, "not found"),
    ("edit-old-twice", "edit_file", {"path": "src/twice.py", "old": "x = 1", "new": "x = 2"}, "occurs 2 times"),
    ("edit-old-empty", "edit_file", {"path": "src/app.py", "old": "", "new": "x"}, "should be non-empty"),
    ("search-out", "search", {"pattern": "secret", "path": "../outside"}, "out of the worktree"),
    ("search-bad-regex", "search", {"pattern": "(unclosed"}, "invalid regular expression"),
    ("unknown-tool", "delete_file", {"path": "src/app.py"}, "unknown tool"),
    ("unknown-tool-bash", "bash", {"command": "rm -rf ."}, "unknown tool"),
    ("extra-argument", "read_file", {"path": "src/app.py", "follow_symlinks": True}, "Additional properties"),
    ("wrong-type", "read_file", {"path": 5}, "is not of type 'string'"),
    ("wrong-type-line", "read_file", {"path": "src/app.py", "start_line": "1"}, "is not of type 'integer'"),
    ("missing-field", "write_file", {"path": "new.txt"}, "'content' is a required property"),
    ("arguments-not-object", "read_file", ["src/app.py"], "JSON object"),
    ("scratchpad-bad-mode", "update_scratchpad", {"content": "x", "mode": "delete"}, "is not one of"),
    ("finish-bad-status", "finish", {"status": "done", "notes": ""}, "is not one of"),
    ("finish-missing-notes", "finish", {"status": "success"}, "'notes' is a required property"),
    ("argv-string", "run_command", {"argv": "pytest -q; rm -rf ."}, "is not of type 'array'"),
    ("argv-empty", "run_command", {"argv": []}, "should be non-empty"),
    ("argv-non-strings", "run_command", {"argv": ["pytest", 3, None]}, "is not of type 'string'"),
    ("argv-nul", "run_command", {"argv": ["pytest", "tests\x00; rm -rf /"]}, "NUL"),
    ("argv-not-allowed", "run_command", {"argv": ["rm", "-rf", "."]}, "not allowed"),
    ("argv-curl", "run_command", {"argv": ["curl", "http://example.com"]}, "not allowed"),
    ("sh-c", "run_command", {"argv": ["sh", "-c", "touch pwned"]}, "inline shell code"),
    ("bash-c", "run_command", {"argv": ["bash", "-c", "x"]}, "inline shell code"),
    ("bash-ec", "run_command", {"argv": ["bash", "-ec", "touch pwned"]}, "inline shell code"),
    ("python-c", "run_command", {"argv": ["python", "-c", "open('pwned','w')"]}, "inline code"),
    ("python3-c", "run_command", {"argv": ["python3", "-c", "open('pwned','w')"]}, "inline code"),
    ("python-Ic", "run_command", {"argv": ["python3", "-I", "-c", "open('pwned','w')"]}, "inline code"),
    ("python-combined-c", "run_command", {"argv": ["python3", "-Ic", "open('pwned','w')"]}, "inline code"),
    ("python-W-then-c", "run_command", {"argv": ["python", "-W", "ignore", "-c", "1"]}, "inline code"),
    ("node-e", "run_command", {"argv": ["node", "-e", "require('fs').writeFileSync('pwned','')"]}, "inline code"),
    ("perl-e", "run_command", {"argv": ["perl", "-e", "open(F,'>pwned')"]}, "inline code"),
    ("perl-ne", "run_command", {"argv": ["perl", "-ne", "print"]}, "inline code"),
    ("env-as-argv0", "run_command", {"argv": ["env", "X=1", "python"]}, "not allowed"),
    ("env-after-launcher", "run_command", {"argv": ["uv", "run", "env", "X=1", "python"]}, "runs other commands"),
    ("xargs-as-argv0", "run_command", {"argv": ["xargs", "touch"]}, "not allowed"),
    ("xargs-after-launcher", "run_command", {"argv": ["uv", "run", "xargs", "touch", "pwned"]}, "runs other commands"),
    ("python-c-after-launcher", "run_command", {"argv": ["uv", "run", "python", "-c", "1"]}, "inline code"),
    ("find-exec", "run_command", {"argv": ["find", ".", "-exec", "touch", "pwned", ";"]}, "find -exec"),
    ("find-execdir", "run_command", {"argv": ["find", ".", "-name", "*.py", "-execdir", "rm", "{}", "+"]}, "find"),
    ("npx-c", "run_command", {"argv": ["uv", "run", "npx", "-c", "touch pwned"]}, "npx --call"),
    ("git-c", "run_command", {"argv": ["git", "-c", "core.pager=touch pwned", "log"]}, "git -c"),
    ("git-upload-pack", "run_command", {"argv": ["git", "ls-remote", "--upload-pack=touch pwned", "."]}, "git"),
    ("exe-absolute", "run_command", {"argv": ["/bin/rm", "-rf", "."]}, "absolute"),
    ("exe-dotdot", "run_command", {"argv": ["../bin/tool"]}, "out of the worktree"),
    ("exe-in-git", "run_command", {"argv": [".git/hooks/pre-commit"]}, ".git"),
    ("arg-dotdot", "run_command", {"argv": ["pytest", "../../etc"]}, "out of the worktree"),
    ("arg-absolute", "run_command", {"argv": ["cat", "/etc/passwd"]}, "absolute"),
    ("arg-symlink-out", "run_command", {"argv": ["cat", "outdir/secret.txt"]}, "symlink"),
    ("arg-option-value", "run_command", {"argv": ["pytest", "--rootdir=/etc"]}, "absolute"),
    ("arg-short-option-value", "run_command", {"argv": ["python", "-m", "pytest", "-p../outside/plugin"]}, "out of"),
    ("arg-response-file", "run_command", {"argv": ["pytest", "@/etc/passwd"]}, "absolute"),
    ("arg-into-git", "run_command", {"argv": ["git", "diff", "--output=.git/hooks/pre-commit"]}, ".git"),
    ("arg-git-dir", "run_command", {"argv": ["cat", ".git/config"]}, ".git"),
]


@pytest.mark.parametrize(("tool", "arguments", "fragment"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_escape_and_injection_corpus_is_refused_and_changes_nothing(
    worktree: Path, tmp_path: Path, tool: str, arguments: object, fragment: str
) -> None:
    sandbox = FakeSandbox()
    tools = make(worktree, sandbox)
    before = snapshot(tmp_path)
    outcome = tools.dispatch(tool, arguments)
    assert outcome.is_error, outcome
    assert fragment in outcome.content, outcome.content
    assert outcome.changed == [] and outcome.finish is None and not outcome.progress
    assert sandbox.calls == []  # nothing ran
    assert snapshot(tmp_path) == before
    assert not (worktree / "pwned").exists()
    assert tools.calls[-1].is_error and tools.calls[-1].name == tool


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 40
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(
    "arguments",
    [None, "path", 3, {"path": "src/app.py", "start_line": 0}, {"pattern": "x", "max_results": 10_000}],
    ids=["null", "string", "int", "line-zero", "too-many-results"],
)
def test_malformed_arguments_never_raise(worktree: Path, arguments: object) -> None:
    tools = make(worktree)
    tool = "search" if isinstance(arguments, dict) and "pattern" in arguments else "read_file"
    outcome = tools.dispatch(tool, arguments)
    assert outcome.is_error and outcome.content.startswith("refused:")


_PARTS = st.sampled_from(["..", ".", "a", "b", ".git", ".GIT", "", "out", "in", "~", "a\\..", "..."])
_PATHS = st.one_of(
    st.text(max_size=60),
    st.builds(lambda lead, parts: lead + "/".join(parts), st.sampled_from(["", "/", "./", "//"]), st.lists(_PARTS)),
)


@given(_PATHS)
def test_any_path_resolves_inside_the_worktree_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, raw: str
) -> None:
    base = tmp_path_factory.getbasetemp() / "prop"
    root = base / "root"
    if not root.exists():
        (root / "a").mkdir(parents=True)
        (base / "elsewhere").mkdir()
        (root / "out").symlink_to(base / "elsewhere")
        (root / "in").symlink_to("a")
    confinement = Confinement(root)
    try:
        resolved = confinement.resolve(raw)
    except RefusedError:
        return
    assert resolved.path == confinement.root or confinement.root in resolved.path.parents
    assert ".git" not in resolved.rel.casefold().split("/")
    assert resolved.rel.split("/")[0] != ".."


@pytest.mark.parametrize(
    ("argv", "allowing", "not_allowing"),
    [
        (["python", "-c", "print(1)"], [["python", "-c"]], [["python"]]),
        (["uv", "run", "env", "FOO=1", "pytest"], [["uv", "run", "env", "FOO=1"]], [["uv", "run"]]),
        (["find", ".", "-exec", "ls", ";"], [["find", ".", "-exec", "ls"]], [["find", "."]]),
        (["uv", "run", "env", "sh", "-c", "x"], [["uv", "run", "env", "sh", "-c"]], [["uv", "run", "env"]]),
    ],
)
def test_an_escape_written_out_in_the_allow_list_is_allowed(
    worktree: Path, argv: list[str], allowing: list[list[str]], not_allowing: list[list[str]]
) -> None:
    assert check_argv(argv, allowed=allowing, confinement=Confinement(worktree)) == argv
    with pytest.raises(RefusedError):
        check_argv(argv, allowed=not_allowing, confinement=Confinement(worktree))


def test_escape_detection_leaves_ordinary_commands_alone() -> None:
    for argv in (
        ["python", "-m", "pytest", "-q", "-c", "pytest.ini"],  # pytest's -c is a config file
        ["python", "-W", "error", "script.py", "-c"],  # after the script: the script's arguments
        ["pytest", "--keyword=env", "-x"],
        ["ruff", "check", "src"],
        ["git", "diff", "--stat"],
        ["node", "scripts/build.js"],
        ["npx", "jest", "-c", "jest.config.js"],
        ["npm", "run", "test", "--", "-c"],
    ):
        assert find_escape(argv) is None, argv


# -- positive cases ------------------------------------------------------------------------------------------


def test_definitions_cover_the_eight_tools_with_strict_schemas(worktree: Path) -> None:
    definitions = make(worktree).definitions()
    assert [d["name"] for d in definitions] == [tool.value for tool in ToolName]
    for definition in definitions:
        assert set(definition) == {"name", "description", "input_schema"}
        assert definition["description"]
        jsonschema.Draft202012Validator.check_schema(definition["input_schema"])
        assert definition["input_schema"]["additionalProperties"] is False
    run = next(d for d in definitions if d["name"] == "run_command")
    assert "python -m pytest" in run["description"] and "never run through a shell" in run["description"]
    json.dumps(definitions)  # serialisable as sent


def test_list_files(worktree: Path) -> None:
    tools = make(worktree)
    listing = tools.dispatch("list_files", {}).content.splitlines()
    assert "src/app.py" in listing and "docs/notes.md" in listing and "inner_link.py" in listing
    assert not any(line.startswith((".git", "outdir", "etc_link", "secret_link", "pipe")) for line in listing)
    py = tools.dispatch("list_files", {"path": ".", "pattern": "*.py"}).content.splitlines()
    assert py[1:] == ["inner_link.py", "src/app.py", "src/twice.py", "tests/test_app.py"]
    only_src = tools.dispatch("list_files", {"pattern": "src/*.py"}).content.splitlines()
    assert only_src[1:] == ["src/app.py", "src/twice.py"]
    sub = tools.dispatch("list_files", {"path": "docs"})
    assert sub.content.splitlines()[1:] == ["docs/notes.md"] and not sub.is_error


def test_read_file_numbers_lines_and_pages(worktree: Path) -> None:
    tools = make(worktree, read_cap=60)
    (worktree / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 101)))
    first = tools.dispatch("read_file", {"path": "long.txt"})
    assert not first.is_error and first.progress
    assert first.content.splitlines()[1] == "     1\tline 1"
    assert "start_line=" in first.content.splitlines()[0]
    window = tools.dispatch("read_file", {"path": "long.txt", "start_line": 50, "end_line": 51})
    assert window.content.splitlines() == ["long.txt (lines 50-51 of 100)", "    50\tline 50", "    51\tline 51"]
    again = tools.dispatch("read_file", {"path": "long.txt", "start_line": 50, "end_line": 51})
    assert not again.progress  # nothing new was read
    via_link = tools.dispatch("read_file", {"path": "inner_link.py"})
    assert "src/app.py" in via_link.content and "def greet" in via_link.content
    past_end = tools.dispatch("read_file", {"path": "long.txt", "start_line": 500})
    assert past_end.is_error and "100 lines" in past_end.content


def test_search(worktree: Path) -> None:
    tools = make(worktree)
    found = tools.dispatch("search", {"pattern": r"hel+o"})
    lines = found.content.splitlines()
    assert not found.is_error
    assert 'src/app.py:2:     return f"hello {name}"' in lines
    assert "docs/notes.md:2: hello world" in lines
    assert not any("secret" in line or line.startswith(".git") for line in lines)
    limited = tools.dispatch("search", {"pattern": "hello", "path": "src", "max_results": 1})
    assert len(limited.content.splitlines()) == 2 and "more not shown" in limited.content


def test_write_creates_parents_and_reports_the_change(worktree: Path) -> None:
    tools = make(worktree)
    outcome = tools.dispatch("write_file", {"path": "src/pkg/new/mod.py", "content": "X = 1\n"})
    assert not outcome.is_error and outcome.changed == ["src/pkg/new/mod.py"] and outcome.progress
    assert (worktree / "src/pkg/new/mod.py").read_text() == "X = 1\n"
    same = tools.dispatch("write_file", {"path": "src/pkg/new/mod.py", "content": "X = 1\n"})
    assert same.changed == [] and not same.progress and "unchanged" in same.content


def test_edit_replaces_exactly_once(worktree: Path) -> None:
    tools = make(worktree)
    outcome = tools.dispatch("edit_file", {"path": "src/app.py", "old": 'f"hello {name}"', "new": 'f"hi {name}"'})
    assert not outcome.is_error and outcome.changed == ["src/app.py"]
    assert "line 2" in outcome.content
    assert (worktree / "src/app.py").read_text() == APP.replace('f"hello {name}"', 'f"hi {name}"')


def test_scratchpad_append_and_replace(worktree: Path) -> None:
    tools = make(worktree)
    first = tools.dispatch("update_scratchpad", {"content": "plan: fix greet"})
    assert first.changed == ["docs/scratchpads/T-1.md"]
    tools.dispatch("update_scratchpad", {"content": "done: tests", "mode": "append"})
    pad = worktree / "docs/scratchpads/T-1.md"
    assert pad.read_text() == "plan: fix greet\ndone: tests\n"
    tools.dispatch("update_scratchpad", {"content": "condensed", "mode": "replace"})
    assert pad.read_text() == "condensed\n"


def test_scratchpad_must_be_inside_the_worktree(worktree: Path, outside: Path) -> None:
    with pytest.raises(ValueError, match="not inside the worktree"):
        ToolDispatcher(
            worktree, sandbox=FakeSandbox(), allowed_commands=[], scratchpad=outside / "pad.md", command_timeout_s=1
        )


def test_finish_returns_its_fields(worktree: Path) -> None:
    outcome = make(worktree).dispatch(
        "finish", {"status": "success", "notes": " greet fixed \n", "commit_message": "Fix greet"}
    )
    assert outcome.finish == {"status": "success", "notes": "greet fixed", "commit_message": "Fix greet"}
    assert not outcome.is_error
    escalate = make(worktree).dispatch("finish", {"status": "escalate", "notes": "which API?"})
    assert escalate.finish == {"status": "escalate", "notes": "which API?"}


def test_calls_are_recorded_with_fingerprints(worktree: Path) -> None:
    tools = make(worktree)
    tools.dispatch("read_file", {"path": "src/app.py", "start_line": 1})
    tools.dispatch("read_file", {"start_line": 1, "path": "src/app.py"})
    tools.dispatch("nope", {})
    first, second, third = tools.calls
    assert first.fingerprint == second.fingerprint == fingerprint("read_file", {"start_line": 1, "path": "src/app.py"})
    assert tools.fingerprint("read_file", {"path": "src/app.py", "start_line": 1}) == first.fingerprint
    assert first.arguments == '{"path":"src/app.py","start_line":1}'
    assert first.progress and not second.progress
    assert third.is_error and third.summary.startswith("refused: unknown tool")


def test_a_tool_never_raises(worktree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = make(worktree)

    def boom(**_: object) -> ToolOutcome:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tools, "_tool_list_files", boom)
    outcome = tools.dispatch("list_files", {})
    assert outcome.is_error and "disk on fire" in outcome.content


# -- running commands for real ---------------------------------------------------------------------------------

SANDBOXES = [
    pytest.param("none", id="none"),
    pytest.param("bwrap", id="bwrap", marks=pytest.mark.skipif(bwrap_problem() is not None, reason="no bwrap")),
]


@pytest.mark.parametrize("setting", SANDBOXES)
def test_shell_syntax_in_an_allowed_command_stays_literal(worktree: Path, tmp_path: Path, setting: str) -> None:
    tools = make(worktree, select_sandbox(setting))
    before = snapshot(tmp_path)
    argv = ["echo", "a; rm -rf .", "$(touch pwned)", "`touch pwned2`", "&&", "touch", "pwned3", "|", "sh", ">x"]
    outcome = tools.dispatch("run_command", {"argv": argv})
    assert not outcome.is_error, outcome.content
    assert "exit code 0" in outcome.content
    assert "a; rm -rf . $(touch pwned) `touch pwned2` && touch pwned3 | sh >x\n" in outcome.content
    assert f"sandbox {setting}" in outcome.content
    assert snapshot(tmp_path) == before
    assert not any((worktree / name).exists() for name in ("pwned", "pwned2", "pwned3", "x"))
    assert outcome.changed == []


@pytest.mark.parametrize("setting", SANDBOXES)
def test_run_command_reports_exit_code_and_changed_files(worktree: Path, setting: str) -> None:
    (worktree / "gen.py").write_text("open('generated.txt', 'w').write('x')\nraise SystemExit(4)\n")
    tools = make(worktree, select_sandbox(setting))
    outcome = tools.dispatch("run_command", {"argv": ["python3", "gen.py"]})
    assert not outcome.is_error  # a failing command is information, not a tool error
    assert "exit code 4" in outcome.content
    assert outcome.changed == ["generated.txt"] and outcome.progress


def test_run_command_times_out_and_caps_output(worktree: Path) -> None:
    tools = make(
        worktree,
        LocalSandbox(),
        allowed_commands=[["sleep"], ["seq"]],
        command_timeout_s=0.5,
        output_cap=400,
    )
    slow = tools.dispatch("run_command", {"argv": ["sleep", "10"]})
    assert slow.is_error and "timed out after 0.5 s" in slow.content
    long = tools.dispatch("run_command", {"argv": ["seq", "1", "100000"]})
    assert "output truncated" in long.content and long.content.rstrip().endswith("100000")


def test_a_missing_program_is_reported(worktree: Path) -> None:
    tools = make(worktree, LocalSandbox(), allowed_commands=[["conveyor-no-such-tool"]])
    outcome = tools.dispatch("run_command", {"argv": ["conveyor-no-such-tool"]})
    assert outcome.is_error and "could not start" in outcome.content


def test_no_allowed_commands_refuses_everything(worktree: Path) -> None:
    tools = make(worktree, allowed_commands=[])
    outcome = tools.dispatch("run_command", {"argv": ["pytest"]})
    assert outcome.is_error and "none: no command may be run" in outcome.content
