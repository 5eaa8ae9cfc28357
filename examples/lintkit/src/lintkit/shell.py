"""Running commands (untested on purpose: the coverage scanner reports it)."""

import subprocess


def run(command: str) -> int:
    return subprocess.call(command, shell=True)
