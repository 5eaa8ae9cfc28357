"""The CLI stays fast: prefect, anthropic and dspy are imported only by the commands that need them."""

from __future__ import annotations

import json
import subprocess
import sys


def test_cli_does_not_import_heavy_sdks() -> None:
    code = (
        "import sys, json\n"
        "from conveyor.cli.app import _register, app\n"
        "_register()\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'anthropic', 'dspy', 'litellm', 'git'})\n"
        "names = sorted(c.name or c.callback.__name__ for c in app.registered_commands)\n"
        "print(json.dumps({'heavy': heavy, 'commands': names}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert report["heavy"] == []
    assert {"init", "status", "validate"} <= set(report["commands"])


def test_help_lists_every_command_group() -> None:
    done = subprocess.run([sys.executable, "-m", "conveyor", "--help"], capture_output=True, text=True, check=True)
    for name in ("init", "status", "validate", "runs", "gate", "invocation", "workflow"):
        assert name in done.stdout
