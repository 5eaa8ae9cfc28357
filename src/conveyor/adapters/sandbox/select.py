"""Choose the sandbox from the build-spec's ``agents.sandbox`` setting: auto | bwrap | none."""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from pathlib import Path

from conveyor.adapters.sandbox.bwrap import BwrapSandbox
from conveyor.adapters.sandbox.local import LocalSandbox
from conveyor.domain.errors import ConveyorError
from conveyor.ports import Sandbox

log = logging.getLogger(__name__)

SANDBOX_SETTINGS = ("auto", "bwrap", "none")


@functools.cache
def bwrap_problem(bwrap: str = "bwrap") -> str | None:
    """None when bubblewrap is installed and a trial run works here, else what failed (checked once)."""
    path = shutil.which(bwrap)
    if path is None:
        return f"{bwrap!r} is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="conveyor-bwrap-trial-") as tmp:
        workdir = Path(tmp)
        trial = BwrapSandbox(path).run(["sh", "-c", "echo ok > probe"], cwd=workdir, timeout_s=20, output_cap=2000)
        if not trial.ok:
            detail = trial.error or trial.output.strip() or f"exit code {trial.exit_code}"
            return f"a trial run of {path} failed: {detail}"
        if not (workdir / "probe").is_file():
            return f"a trial run of {path} could not write to the working directory"
    return None


def select_sandbox(setting: str) -> Sandbox:
    """``auto``: bwrap when installed and a trial run works, else ``none`` with a warning."""
    if setting == "none":
        return LocalSandbox()
    if setting == "bwrap":
        problem = bwrap_problem()
        if problem is not None:
            raise ConveyorError(f"agents.sandbox is 'bwrap' but bubblewrap does not work here: {problem}")
        return BwrapSandbox()
    if setting == "auto":
        problem = bwrap_problem()
        if problem is None:
            return BwrapSandbox()
        log.warning(
            "sandbox: bubblewrap does not work here (%s); agent commands run UNSAFE with your rights (sandbox none)",
            problem,
        )
        return LocalSandbox()
    raise ConveyorError(f"agents.sandbox {setting!r} is not one of: {', '.join(SANDBOX_SETTINGS)}")
