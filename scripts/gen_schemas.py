#!/usr/bin/env python3
"""Regenerate docs/schemas/*.schema.json from the pydantic models (run-state, run-queue).

Usage, from the repository root: ``uv run --no-sync python scripts/gen_schemas.py [--check]``.
With ``--check`` nothing is written; the exit code is 1 when a published schema is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conveyor.adapters.state_files import stale_schemas, write_schemas

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report stale schemas (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_schemas(ROOT)
        for name in stale:
            sys.stderr.write(f"docs/schemas/{name} is stale: run scripts/gen_schemas.py\n")
        return 1 if stale else 0
    for path in write_schemas(ROOT):
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
