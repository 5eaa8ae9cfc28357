"""The claude-code backend's environment: loading claude-agent-sdk (the optional extra), the CLI's scrubbed
environment, and what Claude Code's Bash sandbox needs on this machine.

claude_agent_sdk is imported lazily, inside :func:`load_sdk`, so that Conveyor imports without the extra.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

SDK_MODULE = "claude_agent_sdk"
INSTALL_HINT = (
    "the claude-code backend needs the optional extra claude-agent-sdk: run `uv sync --extra claude-code` "
    "(or `pip install 'conveyor[claude-code]'`)"
)
SANDBOX_HINT = (
    "with isolate_commands (the default) Claude Code runs Bash in its own sandbox, which needs bwrap and socat "
    "(apt-get install bubblewrap socat); without them no command can run"
)
# Inherited variables that reach the CLI unchanged (everything else is blanked): locale, PATH, proxies, CAs.
KEEP_ENV = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "USER",
        "LOGNAME",
        "SHELL",
        "TMPDIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
    }
)


class SdkUnavailableError(Exception):
    """claude-agent-sdk is not installed (the claude-code extra)."""


def load_sdk() -> ModuleType:
    """The claude_agent_sdk module, imported on first use; SdkUnavailableError when the extra is missing."""
    try:
        return importlib.import_module(SDK_MODULE)
    except ImportError as exc:
        raise SdkUnavailableError(f"{INSTALL_HINT} ({exc})") from None


def sdk_available() -> bool:
    try:
        load_sdk()
    except SdkUnavailableError:
        return False
    return True


def cli_environment(
    *,
    api_key: str,
    base_url: str | None,
    home: Path,
    max_retries: int,
    timeout_s: float,
    isolate_commands: bool,
    inherited: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``ClaudeAgentOptions.env``: blanks every inherited variable but KEEP_ENV, then sets what the CLI needs.

    (The SDK merges ``env`` over the parent's environment, so removing is done by blanking.)
    """
    source = os.environ if inherited is None else inherited
    env = {key: "" for key in source if key not in KEEP_ENV and not key.startswith("LC_")}
    no_proxy = ",".join(part for part in (source.get("NO_PROXY", ""), "127.0.0.1,localhost,::1") if part)
    env.update(
        {
            "ANTHROPIC_API_KEY": api_key,
            "ANTHROPIC_BASE_URL": base_url or "",
            "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            "CLAUDE_CODE_TMPDIR": str(home / "tmp"),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
            "DO_NOT_TRACK": "1",
            "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
            "API_TIMEOUT_MS": str(int(timeout_s * 1000)),
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
    )
    if isolate_commands:
        env["CLAUDE_CODE_SUBPROCESS_ENV_SCRUB"] = "1"
    return env


def command_sandbox_missing() -> list[str]:
    """What Claude Code's Bash sandbox needs and this machine lacks (empty: it can run)."""
    return [tool for tool in ("bwrap", "socat") if shutil.which(tool) is None]
