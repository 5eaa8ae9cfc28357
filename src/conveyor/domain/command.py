"""The result of running one command (an agent's tool call, later the QA gates): argv in, facts out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CommandResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    argv: tuple[str, ...]
    cwd: str
    exit_code: int | None = Field(description="None when the command did not start or was killed on timeout")
    timed_out: bool = False
    duration_s: float = Field(0.0, ge=0)
    output: str = Field("", description="stdout and stderr interleaved, capped")
    truncated: bool = Field(False, description="output went past the cap; the tail was kept")
    error: str | None = Field(None, description="why the command could not be started")
    sandbox: str = Field(description="none | bwrap")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.error is None
