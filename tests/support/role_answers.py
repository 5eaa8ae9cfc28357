"""Judgment-role answers shared by the DSPy, stub and bootstrap tests: a two-ticket plan, a review verdict, and
how DSPy's ChatAdapter expects a completion to look."""

from __future__ import annotations

import copy
import json
from typing import Any

from conveyor.domain.ticket import Ticket

# A ticket, its diff and a PRD for the reviewer and planner; the markers prove the text reached the prompt.
TICKET = Ticket(
    id="APP-FEAT-007",
    title="Add the /health endpoint",
    description="Expose service health for the load balancer.",
    acceptance_criteria=("GET /health returns 200 with {'status': 'ok'}",),
)
DIFF = """diff --git a/src/app/health.py b/src/app/health.py
--- a/src/app/health.py
+++ b/src/app/health.py
@@ -0,0 +1,2 @@
+def health():
+    return {"status": "ok"}  # UNIQUE-DIFF-MARKER
"""
PRD = "# Product\n\nUNIQUE-PRD-MARKER: a todo app with login and sharing.\n"

_TODO_PLAN: dict[str, Any] = {
    "tickets": [
        {
            "id_hint": "CORE-001",
            "title": "Create the todo model",
            "description": "Todo items with owner and done flag.",
            "acceptance_criteria": ["a todo can be created and marked done"],
            "depends_on": [],
            "complexity": 3,
            "touch_set": ["src/todo/model.py"],
            "task_type": "FEATURE_ADD",
            "estimate_tokens": 15000,
        },
        {
            "id_hint": "AUTH-001",
            "title": "Add login",
            "description": "Session login.",
            "acceptance_criteria": ["a wrong password returns 401"],
            "depends_on": ["CORE-001"],
            "complexity": 6,
            "touch_set": ["src/auth.py"],
            "task_type": "AUTH_ADD",
            "estimate_tokens": 20000,
        },
    ]
}


def todo_plan() -> dict[str, Any]:
    """A fresh copy of the two-ticket plan (tests may change it)."""
    return copy.deepcopy(_TODO_PLAN)


def chat_answer(**fields: Any) -> str:
    """A completion in DSPy ChatAdapter's format: ``[[ ## field ## ]]`` sections (values as JSON), then completed."""
    body = "\n\n".join(
        f"[[ ## {name} ## ]]\n{value if isinstance(value, str) else json.dumps(value)}"
        for name, value in fields.items()
    )
    return f"{body}\n\n[[ ## completed ## ]]"
