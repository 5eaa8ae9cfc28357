"""Text heuristics of the PRD parser: labels, markers, ids, titles, touch sets and complexity.

All of them are pure functions of the text, documented in :mod:`conveyor.adapters.prd_parser`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.adapters.prd_parser_model import Priority
from conveyor.domain.learning import base_estimate_tokens, classify, file_count_hint
from conveyor.domain.ticket import TaskType

TITLE_MAX = 80

# ── normalisation ───────────────────────────────────────────────────────────────────────────────────────

_EMPHASIS = re.compile(r"\*\*|__|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_SPACES = re.compile(r"\s+")


def plain(text: str) -> str:
    """``text`` without emphasis markers and link targets, whitespace collapsed."""
    return _SPACES.sub(" ", _EMPHASIS.sub("", _LINK.sub(r"\1", text))).strip()


def key(text: str) -> str:
    """The form names are compared in: plain, no quotes or backticks, no trailing punctuation, case-folded."""
    stripped = re.sub(r"[`\"'“”‘’]", "", plain(text))  # noqa: RUF001 - typographic quotes are meant
    return stripped.strip(" .:;,!?").casefold()


def collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


# ── labels: MoSCoW, acceptance criteria, user stories ───────────────────────────────────────────────────

_PRIORITY = re.compile(
    r"^(?:p\d\s*[-:/|]?\s*)?(?P<p>must|should|could|won['’]?t|will\s+not|nice)"  # noqa: RUF001
    r"(?P<have>[\s-]*(?:haves?|to[\s-]+haves?))?"
    r"(?:\s+(?:requirements?|features?|items?|stories|scope))?"
    r"(?:\s*\([^()]*\))?"
    r"(?P<tail>\s*[-–—]\s*[^:]{0,40})?$",  # noqa: RUF001
    re.IGNORECASE,
)
_PRIORITY_PREFIX = re.compile(
    r"^(?:\*\*|__)?[\[(]?(?P<p>must|should|could|won['’]?t)(?:[\s-]+haves?)?[\])]?(?:\*\*|__)?"  # noqa: RUF001
    r"(?:\s*:\s*(?:\*\*|__)?\s*|(?<=[\])])\s+|(?<=[\])]\*\*)\s+|(?<=[\])]__)\s+)(?P<rest>\S.*)$",
    re.IGNORECASE,
)
_AC_LABELS = frozenset({"acceptance criteria", "acceptance criterion", "ac", "done when", "definition of done"})
_STORY = re.compile(
    r"^as\s+(?P<role>[^,]{1,60}?)\s*,?\s+i\s+(?:want|need|would\s+like|wish)\s+(?P<want>.+?)"
    r"(?:\s*,?\s+so\s+that\s+(?P<why>.+?))?\s*[.!]?$",
    re.IGNORECASE,
)


def _priority_of(word: str) -> Priority:
    word = word.casefold()
    if word.startswith("must"):
        return Priority.MUST
    if word.startswith("should"):
        return Priority.SHOULD
    if word.startswith(("could", "nice")):
        return Priority.COULD
    return Priority.WONT


def priority_label(text: str) -> Priority | None:
    """The priority a heading or label line such as 'Must have (P0):' or "Won't have" announces."""
    bare = plain(text).rstrip(":").strip()
    match = _PRIORITY.match(bare)
    if match is None or ((match["tail"] or match["p"].casefold() == "nice") and not match["have"]):
        return None
    return _priority_of(match.group("p"))


def priority_prefix(text: str) -> tuple[Priority | None, str]:
    """An item's own priority prefix ('Must: x', '**Should:** x', '[Could] x') and the text without it."""
    match = _PRIORITY_PREFIX.match(text.strip())
    if match is None:
        return None, text
    return _priority_of(match.group("p")), match.group("rest")


def is_ac_label(text: str) -> bool:
    return plain(text).rstrip(":").strip().casefold() in _AC_LABELS


@dataclass(frozen=True)
class Story:
    role: str
    want: str
    why: str | None


def story(text: str) -> Story | None:
    match = _STORY.match(plain(text))
    if match is None:
        return None
    return Story(match.group("role").strip(), match.group("want").strip(), match.group("why"))


# ── dependency markers ──────────────────────────────────────────────────────────────────────────────────

_DEP_INLINE = re.compile(r"\s*[(\[]\s*(?:depends\s+on\s*:?|after\s*:)\s*(?P<t>[^()\[\]]+?)\s*[)\]]", re.I)
_DEP_TRAILING = re.compile(r"\s*(?:[;—–]|\s-)\s*depends\s+on\s*:?\s*(?P<t>\S.*?)\s*$", re.I)  # noqa: RUF001
_DEP_LINE = re.compile(r"^(?:depends\s+on\s*:?|after\s*:)\s*(?P<t>\S.*?)\s*$", re.I)


def marker_line(text: str) -> str | None:
    """The targets of a line that is only a dependency marker ('Depends on: FR-1', 'After: Search')."""
    match = _DEP_LINE.match(plain(text))
    return match.group("t") if match else None


def extract_markers(text: str) -> tuple[str, list[str]]:
    """``text`` without its inline markers ('(depends on X)', '(after: X)', '— depends on X'), and their targets."""
    targets = [m.group("t") for m in _DEP_INLINE.finditer(text)]
    text = _DEP_INLINE.sub("", text)
    trailing = _DEP_TRAILING.search(text)
    if trailing:
        targets.append(trailing.group("t"))
        text = text[: trailing.start()]
    return text.strip(), targets


def split_targets(targets: str) -> list[str]:
    """The names in a marker's target list, split on commas and semicolons (' and ' is tried by the resolver)."""
    return [t.strip() for t in re.split(r"[,;]", targets) if key(t)]


# ── ids and assumptions ─────────────────────────────────────────────────────────────────────────────────

_ID = re.compile(
    r"^(?:\*\*|__)?\[?(?P<id>[A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)*[-_]\d+[a-z]?)\]?(?:\*\*|__)?"
    r"(?:\s*[:.)]|\s+[-—–]|(?<=\])|(?<=\*\*)|(?<=__))\s*(?:\*\*|__)?\s*(?P<rest>\S.*)$"  # noqa: RUF001
)
ASSUMPTION = "ASSUMPTION:"


def id_prefix(text: str) -> tuple[str | None, str]:
    """A leading requirement id ('FR-1: x', '[US-2] x', '**AUTH-3** — x') and the text without it."""
    match = _ID.match(text.strip())
    return (match.group("id"), match.group("rest")) if match else (None, text)


def assumption_text(text: str) -> str | None:
    index = text.find(ASSUMPTION)
    if index < 0:
        return None
    rest = plain(text[index + len(ASSUMPTION) :])
    return rest or plain(text)


# ── titles ──────────────────────────────────────────────────────────────────────────────────────────────


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


IMPERATIVE_VERBS = _words(
    """accept activate add aggregate alert allow annotate apply approve archive assign attach audit authenticate
    authorise authorize autocomplete automate back backup ban batch benchmark bill block bootstrap build bundle cache
    calculate cancel cap categorise categorize change charge check classify clean clear clone close collapse collect
    combine comment compose compress compute configure confirm connect consume convert copy count create crop
    deactivate debounce decline decompress decrypt deduplicate delete deliver deny deploy detect disable dismiss
    dispatch display download draft drop edit email embed emit enable encrypt enforce ensure erase escalate escape
    estimate evict expand expire export expose extend extract fetch fill filter fix flag flatten follow forecast format
    forward freeze generate give group handle hash hide highlight host implement import improve include index ingest
    install instrument integrate introduce invalidate invite invoice join keep label launch let limit link list load
    localise localize lock log make manage map mark measure mention merge migrate mirror monitor move mute normalise
    normalize notify offer onboard open optimise optimize paginate parse pause pay persist pin play poll populate
    prefill preview prevent print process profile protect provide prune publish purge queue rank rate rate-limit
    reactivate record recover redirect redo reduce refactor refresh refund register reject release reload remind
    remove rename render renew reorder replace replicate reply report require reschedule reset resize resolve respond
    restart restore restrict resume retry return reuse revert review revoke rollback rotate route run sanitise sanitize
    save scan schedule score search seed select send serve set share ship show shorten sign snapshot sort split start
    stop store stream submit subscribe suggest summarise summarize support suspend switch sync synchronise synchronize
    tag throttle toggle track transfer transform translate trigger trim truncate undo unfollow unlock unpin unpublish
    unsubscribe update upgrade upload use validate verify version warn welcome wipe write zip"""
)
# Second words that make the first a subject ("Search returns ...", "Export is ..."), not an imperative verb.
_PREDICATES = _words(
    """is are was were has have does do can may must shall should will would returns shows displays includes
    contains supports lists matches works runs sends stores uses appears loads takes needs requires allows lets
    accepts rejects fails completes respects handles produces creates updates keeps finds gives opens exports
    imports saves never always only"""
)
_SUBJECT = r"(?P<subj>(?:\S+\s+){0,5}?\S+)"
_ABLE = re.compile(
    _SUBJECT + r"\s+(?:can|may|(?:is|are)\s+(?:able|allowed)\s+to|(?:must|shall|should|will)\s+be\s+able\s+to)"
    r"\s+(?P<rest>.+)$",
    re.I,
)
_MODAL = r"(?:must|shall|should|will|needs?\s+to|has\s+to|have\s+to)"
_MODAL_NOT = re.compile(_SUBJECT + r"\s+(?:must|shall|should|will)\s+(?:not|never)\s+(?P<rest>.+)$", re.I)
_MODAL_BE = re.compile(_SUBJECT + r"\s+" + _MODAL + r"\s+be\s+(?P<rest>.+)$", re.I)
_MODAL_DO = re.compile(_SUBJECT + r"\s+" + _MODAL + r"\s+(?P<rest>.+)$", re.I)
_PRONOUNS = {"my": "their", "me": "them", "i": "they", "myself": "themselves", "i'm": "they're", "mine": "theirs"}


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower():
        return text[0].lower() + text[1:]
    return text


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(subject: str) -> bool:
    last = subject.rsplit(maxsplit=1)[-1].casefold()
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))


def _verb_first(words: list[str]) -> bool:
    if words[0].casefold() not in IMPERATIVE_VERBS:
        return False
    # "Search returns ...", "Search results are ...": the first word is (part of) the subject
    return not any(w.casefold().strip(",") in _PREDICATES for w in words[1:3])


def _title_source(text: str) -> str:
    text = plain(text)
    if text.startswith(ASSUMPTION):
        text = text[len(ASSUMPTION) :]
    return text.strip().rstrip(".;:!").strip()


def truncate(title: str, limit: int = TITLE_MAX) -> str:
    title = collapse(title)
    if len(title) <= limit:
        return title
    cut = title[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-—(") + "…"


def imperative(text: str, fallback: str = "Ensure", *, min_words: int = 1) -> str:
    """An imperative title for a requirement (rules in the module docstring of prd_parser), ≤ 80 characters."""
    source = _title_source(text)
    words = source.split()
    if not words:
        return source
    if len(words) >= min_words and _verb_first(words):
        return truncate(_upper_first(source))
    if match := _ABLE.match(source):
        return truncate(f"Allow {_lower_first(match['subj'])} to {match['rest']}")
    if match := _MODAL_NOT.match(source):
        return truncate(f"Do not let {_lower_first(match['subj'])} {match['rest']}")
    if match := _MODAL_BE.match(source):
        verb = "are" if _plural(match["subj"]) else "is"
        return truncate(f"Ensure {_lower_first(match['subj'])} {verb} {match['rest']}")
    if match := _MODAL_DO.match(source):
        return truncate(f"Make {_lower_first(match['subj'])} {match['rest']}")
    return truncate(f"{fallback} {_lower_first(source)}")


def story_title(found: Story) -> str:
    """'As a shopper, I want to save a search' → 'Let a shopper save a search'; 'I want X' → 'Give a shopper X'."""
    want = _title_source(found.want)
    want = " ".join(_PRONOUNS.get(w.casefold(), w) for w in want.split())
    role = _lower_first(found.role)
    if want.casefold().startswith("to "):
        return truncate(f"Let {role} {want[3:]}")
    return truncate(f"Give {role} {want}")


# ── touch set ───────────────────────────────────────────────────────────────────────────────────────────

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)
_PATH = re.compile(r"(?<![\w/.@-])((?:[\w.-]+/)+[\w.-]*\.[A-Za-z]\w*)(?![\w/])")
_CODE = re.compile(r"`([^`\s]+)`")
_FILE_NAME = re.compile(r"^[\w.-]+\.[A-Za-z]\w{0,9}$|^(?:Dockerfile|Makefile|Procfile|Justfile)$")


def touch_set(texts: list[str]) -> list[str]:
    """File paths the texts mention: relative paths with a directory and an extension anywhere, and bare
    file names ('README.md', 'Dockerfile') inside backticks. URLs and absolute paths are not files."""
    found: dict[str, None] = {}
    for raw in texts:
        text = _URL.sub(" ", raw)
        spans: list[tuple[int, str]] = []
        for match in _CODE.finditer(text):
            token = match.group(1).rstrip(".,;:")
            if not token.startswith("/") and (_FILE_NAME.match(token) or _PATH.fullmatch(token)):
                spans.append((match.start(), token))
        spans += [(m.start(), m.group(1)) for m in _PATH.finditer(_CODE.sub(" ", text))]
        for _, path in sorted(spans):
            found.setdefault(path, None)
    return list(found)


# ── complexity and estimates ────────────────────────────────────────────────────────────────────────────

COMPLEX_KEYWORDS = re.compile(
    r"\b(?:secur\w*|encrypt\w*|authenticat\w*|authori[sz]\w*|payments?|billing|migrat\w*|concurren\w*|real-?time|distributed|synchroni[sz]\w*|"
    r"offline|oauth|sso|single sign-on|permissions?|role-based|rbac|audit\w*|gdpr|compliance|scal(?:e|able|ability|"
    r"ing)|performance|latency|transactions?)\b",
    re.I,
)
SIMPLE_KEYWORDS = re.compile(r"\b(?:typos?|wording|copy text|labels?|renam\w*|tooltips?|colou?rs?|links? to)\b", re.I)


def complexity(text: str, criteria: list[str], files: list[str]) -> int:
    """1-10: 2, +1 above 15 words, +1 above 40, +1 above 80 (text and distinct criteria together); +1 per two
    criteria (at most +3); +2 for a complex keyword (security, payments, migration, concurrency,
    real-time, performance, permissions ...); +1 for three or more files; -1 for a cosmetic keyword (typo,
    wording, label, rename, colour, tooltip)."""
    everything = " ".join(dict.fromkeys([text, *criteria]))  # an item's text is usually its one criterion too
    words = len(everything.split())
    score = 2 + (words > 15) + (words > 40) + (words > 80)
    score += min(3, len(criteria) // 2)
    score += 2 if COMPLEX_KEYWORDS.search(everything) else 0
    score += 1 if len(files) >= 3 else 0
    score -= 1 if SIMPLE_KEYWORDS.search(everything) else 0
    return max(1, min(10, score))


def task_type_and_estimate(text: str, files: list[str]) -> tuple[TaskType, int]:
    """Seed 001's keyword classification (FEATURE_ADD when no keyword matches) and that type's base estimate."""
    task_type = classify(text) or TaskType.FEATURE_ADD
    count = len(files) or file_count_hint(text)
    estimate = base_estimate_tokens(task_type, count)
    if estimate is None:  # pragma: no cover - classify never returns DOCS or VERIFICATION
        estimate = base_estimate_tokens(TaskType.FEATURE_ADD) or 0
    return task_type, estimate
