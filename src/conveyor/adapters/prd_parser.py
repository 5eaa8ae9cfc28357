"""The deterministic PRD parser: docs/PRD.md or docs/PRD.json → a :class:`~conveyor.domain.roles.Plan`.

Bootstrap uses it when no model is available (deterministic mode, issue 4 behaviour 5); the report says so
(:meth:`PrdParse.summary`). It returns the same ``Plan`` the LLM planner returns, so the rest of bootstrap treats
both alike. It reads only *explicit* requirement structure and guesses nothing: prose outside that structure is
never turned into tickets, and dependencies come only from explicit markers.

Markdown (docs/PRD.md)
======================

Accepted structures (anything else is prose; a PRD with none of them is refused, naming them):

1. **Checkbox items** ``- [ ] text`` anywhere (also ``* [ ]``, ``1. [ ]``): exactly one ticket each, whose
   acceptance criterion is the item's text — unless another structure claims it (below): nested under a
   requirement item or in a story's acceptance criteria it is a criterion of that one ticket; in a could-have,
   won't-have or out-of-scope list it is reported instead. Checked items (``- [x]``) are already delivered:
   reported in ``ignored`` (reason ``delivered``), no ticket.
2. **MoSCoW lists**: the list items under a heading or a label line announcing a priority — ``## Must have``,
   ``### Should-have requirements``, ``**Could have:**``, ``Won't have (this release)``, ``Nice to have`` (=
   could) — or an item with its own prefix (``- Must: x``, ``- **Should:** x``, ``- [Could] x``). A heading's
   priority holds for its whole subtree, a label line's for the list right after it, a prefix for its item.
   Each must-have and should-have item is exactly one ticket, its text the acceptance criterion. Could-have and
   won't-have items are not ticketed: ``ignored`` lists them (reasons ``could-have``, ``wont-have``).
3. **Numbered feature sections**: headings ``## 1. Search``, ``## 2) Export``, ``## 3: Audit``,
   ``### 6.1 Saved searches`` (one or two digits per level), ``### Feature 2: Export``, ``### Feature: Export``,
   ``### Epic 3 - Billing``. Sections titled like context rather than features (Overview, Introduction,
   Background, Goals, Personas, Glossary, Open questions, Risks, Assumptions, Constraints, Timeline, Notes,
   Scope, ...: ``prd_parser_headings.INFORMATIONAL_TITLES``, compared without case and parenthesised text;
   numbered or not) are not feature sections, and a feature section's items under such a sub-heading are not
   its requirements. A feature section groups what it holds:

   - each bullet or numbered item (not otherwise claimed) → one ticket titled from the item, its text the
     criterion, the description naming the section;
   - an ``Acceptance criteria`` list not attached to a user story → one ticket for the section whose criteria
     are that list (its prose becomes the description);
   - a section (with its sub-headings) that yields nothing else but has prose → one ticket for the section,
     titled from the heading (``Implement <title>`` unless the heading starts with a verb), whose criteria are
     the prose's sentences (split after ``.``, ``!`` or ``?`` before a capital or digit);
   - a section with neither → reported in ``ignored`` (reason ``empty-section``).
4. **User stories**: ``As a <role>, I want <x> [so that <y>]`` (as a paragraph, a list item or a heading),
   followed by an acceptance criteria list — a label ``Acceptance criteria:`` (also ``AC:``, ``Done when:``,
   ``Definition of done:``; bold or not, or a heading) and the items after it, or for a bulleted story the
   label nested under it. One ticket per story; its criteria are that list. A story without one is an error.

**One item, one ticket.** An item claimed by one structure is never read again by another: a checkbox in a
Must-have list is one ticket; a checkbox in a story's acceptance criteria is a criterion of the story's ticket;
items nested under a requirement item are further criteria of that item's ticket (nested paragraphs go to its
description). A plain bullet outside every structure is prose, but checkboxes nested under it still count.

**Scope.** Items in a section titled Out of scope, Non-goals, Future (work / considerations / enhancements),
Later, Deferred, Parking lot or Icebox are reported (reason ``out-of-scope``), not ticketed.

**Ids, dependencies, assumptions.**

- A leading id such as ``FR-1:``, ``[US-2]``, ``**AUTH-3** —`` becomes the ticket's ``id_hint`` and is dropped
  from the text; a heading's id goes to the one user story under it (``### US-1: Tag links``).
- Dependencies come only from explicit markers: ``(depends on X)``, ``(after: X)``, a trailing
  ``— depends on X`` / ``; depends on X``, or a line or nested item ``Depends on: X`` / ``After: X``. "after"
  needs the colon (so that "redirect (after login)" is no marker). X is an id, a ticket title, a requirement's
  text, or a feature section (its heading, its title, or its number: ``6.2``, ``section 6.2``); several are
  separated by commas, semicolons or "and". A marker in an item or story applies to its ticket; in a feature
  section's heading or prose, to every ticket of the section (but the one it names); a ``Depends on:`` line
  anywhere else is an error. A dependency on a delivered item is met and dropped; one on a could-have,
  won't-have or out-of-scope item, on nothing known, on something ambiguous or on itself is an error; so is a
  cycle. Markers are removed from titles and criteria.
- Every line containing ``ASSUMPTION:`` is listed in ``assumptions``; such a requirement is still ticketed
  (seed 001 marks guessed requirements that way) and its description says it was marked.
- Fenced code, HTML comments, tables and front matter are skipped. The title is the first ``#`` heading.

JSON (docs/PRD.json)
====================

::

    {"title": "Shelfie",
     "assumptions": ["Teams have at most 50 members."],
     "requirements": [
       {"id": "FR-1", "title": "Sign in with an email magic link", "priority": "must",
        "description": "...", "acceptance_criteria": ["A link signs the user in once"],
        "depends_on": [], "touch_set": ["src/auth.py"], "complexity": 4, "done": false, "notes": "..."}]}

``id``, ``title`` and (for must/should items not ``done``) ``acceptance_criteria`` are required; ``priority``
is must (default), should, could or wont ("won't", "must-have" ... are accepted); ``depends_on`` names ids or
titles. Unknown keys in a requirement are refused (a misspelt key is reported); other top-level keys are
ignored. ``done: true`` → delivered; could/wont → ignored; a title is used as written (trimmed to 80).

Derived fields (both formats)
=============================

- **title**: imperative, ≤ 80 characters (cut at a word, "…"). A text starting with a verb
  (``prd_parser_text.IMPERATIVE_VERBS``) is kept ("Export links as CSV") unless its second or third word makes
  it a subject ("Search returns ...", "Search results are ..."); "X can/may/is able to Y" → "Allow X to Y";
  "X must/shall/should/will not Y" → "Do not let X Y"; "X must be Y" → "Ensure X is/are Y"; "X must Y" →
  "Make X Y"; anything else → "Ensure <text>"; a story → "Let <role> <x>" ("I want to x") or
  "Give <role> <x>"; a section → "Implement <title>". Markdown emphasis, link targets, ids, priority prefixes,
  markers and ``ASSUMPTION:`` are dropped. Repeated titles get the section, then the line, appended.
- **complexity** (1-10): 2; +1 above 15 words, +1 above 40, +1 above 80 (text and distinct criteria); +1 per
  two criteria (at most +3); +2 for a complex keyword (security, encryption, payments, billing, migration,
  concurrency, real-time, sync, offline, OAuth/SSO, permissions, audit, GDPR, scale, performance, latency,
  transactions); +1 for three or more files; -1 for a cosmetic keyword (typo, wording, label, rename, colour,
  tooltip). PRD.json may set it.
- **task_type**: :func:`conveyor.domain.learning.classify` on the text and criteria; ``FEATURE_ADD`` when no
  keyword matches. **estimate_tokens**: that type's base estimate (:func:`~conveyor.domain.learning.
  base_estimate_tokens`, middle of the range, file count from the touch set).
- **touch_set**: file paths the text, criteria and nested notes mention — relative paths with a directory and
  an extension (``src/app/search.py``), and bare file names in backticks (```README.md```); URLs and absolute
  paths (``/healthz``) are not files. PRD.json may set it.

Errors (:class:`~conveyor.domain.errors.InputError`, each problem naming file and 1-based line): the file
missing; no requirement structure (the message lists the accepted ones); nothing left to ticket; an empty
checkbox or empty item in a requirement list; a user story without acceptance criteria; a dependency marker
naming nothing known (or something ambiguous, not ticketed, or itself), or standing where it applies to no
ticket; a dependency cycle; a repeated id; in PRD.json, invalid JSON and every schema violation. Problems are
reported together by stage (structure, then ids, then dependencies, then a cycle).
"""

from __future__ import annotations

from pathlib import Path

from conveyor.adapters.prd_parser_json import read_json
from conveyor.adapters.prd_parser_markdown import read_markdown
from conveyor.adapters.prd_parser_model import (
    ACCEPTED_STRUCTURES,
    Assumption,
    IgnoredItem,
    IgnoreReason,
    ItemKind,
    PrdItem,
    PrdParse,
    Priority,
)
from conveyor.adapters.prd_parser_plan import build_parse
from conveyor.adapters.structured_text import read_text

__all__ = [
    "ACCEPTED_STRUCTURES",
    "Assumption",
    "IgnoreReason",
    "IgnoredItem",
    "ItemKind",
    "PrdItem",
    "PrdParse",
    "Priority",
    "parse_prd",
    "parse_prd_text",
]


def parse_prd(repo: Path, path: str = "docs/PRD.md") -> PrdParse:
    """Parse the PRD at ``repo / path`` (markdown, or JSON when ``path`` ends in ``.json``).

    Raises InputError naming the file (as ``path``) and line for a missing file and every problem above.
    """
    text = read_text(repo / path, path)
    return parse_prd_text(text, path)


def parse_prd_text(text: str, path: str = "docs/PRD.md") -> PrdParse:
    """Parse PRD ``text``; ``path`` names it in errors and provenance and picks the format by its suffix."""
    text = text.removeprefix("\ufeff")
    if path.casefold().endswith(".json"):
        title, requirements, assumptions = read_json(text, path)
        return build_parse(
            path,
            title=title or Path(path).name,
            fmt="json",
            requirements=requirements,
            sections=[],
            assumptions=assumptions,
        )
    title, reader, assumptions = read_markdown(text, path)
    return build_parse(
        path,
        title=title,
        fmt="markdown",
        requirements=reader.requirements,
        sections=reader.sections,
        assumptions=assumptions,
        extra_ignored=reader.ignored,
    )
