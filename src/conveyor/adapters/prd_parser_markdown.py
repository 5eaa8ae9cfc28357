"""docs/PRD.md → requirements, by the rules of :mod:`conveyor.adapters.prd_parser`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from conveyor.adapters import prd_parser_headings as hd
from conveyor.adapters import prd_parser_text as txt
from conveyor.adapters.prd_parser_markdown_blocks import Block, Item, Para, Section, content_lines, parse_blocks
from conveyor.adapters.prd_parser_model import (
    Assumption,
    IgnoredItem,
    IgnoreReason,
    ItemKind,
    Marker,
    Priority,
    Requirement,
    SectionRef,
)
from conveyor.domain.errors import InputError, Problem


@dataclass
class _Feature:
    heading: str
    title: str
    line: int
    id_hint: str | None
    parent: _Feature | None
    ref: SectionRef
    prose: list[str] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)
    checked: list[bool] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    count: int = 0  # requirements (ticketed or not) read in this section and its subsections


@dataclass(frozen=True)
class _Ctx:
    priority: Priority | None = None
    feature: _Feature | None = None
    excluded: str | None = None  # heading of the out-of-scope section the item is in


@dataclass
class _Story:
    req: Requirement
    ctx: _Ctx
    checked: list[bool] = field(default_factory=list)


_AC = "ac"
_ALL_CHECKED = "already delivered (every criterion checked)"
_STRAY_MARKER = (
    "a dependency line belongs nested under its item, after its user story, or in a numbered feature section "
    "(for all of the section's tickets)"
)


class MarkdownReader:
    """Walks the section tree once; ``requirements`` and ``problems`` are the result."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.requirements: list[Requirement] = []
        self.sections: list[SectionRef] = []
        self.ignored: list[IgnoredItem] = []
        self.problems: list[Problem] = []
        self._features: dict[int, _Feature] = {}
        self._heading: tuple[str | None, list[Marker]] | None = None  # id and markers for a heading's one story

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    # ── sections ──

    def walk(self, root: Section) -> None:
        ctx = _Ctx()
        self._walk_blocks(root.blocks, ctx, None, None)
        for position, child in enumerate(root.children):
            self.walk_section(child, ctx, title=position == 0 and child.level == 1)
        for req in self.requirements:
            feature = self._features.get(id(req))
            while feature is not None:
                req.markers += [Marker(m.target, m.line, from_section=True) for m in feature.markers]
                feature = feature.parent

    def _enter(self, section: Section, ctx: _Ctx, targets: list[str]) -> tuple[_Ctx, _Feature | None]:
        """The context inside ``section``, and its feature when it is a feature section."""
        heading = hd.classify(section.heading)
        if heading.kind is hd.HeadingKind.PRIORITY:
            return replace(ctx, priority=heading.priority), None
        if heading.kind is hd.HeadingKind.EXCLUDED:
            return replace(ctx, excluded=heading.text), None
        if heading.kind is hd.HeadingKind.INFORMATIONAL:
            return replace(ctx, feature=None), None
        if heading.kind is hd.HeadingKind.PLAIN:
            return ctx, None
        ref = SectionRef(heading.text, section.line, heading.keys)
        self.sections.append(ref)
        feature = _Feature(heading.text, heading.name, section.line, heading.id_hint, ctx.feature, ref)
        feature.markers += [Marker(t, section.line, from_section=True) for t in targets]
        return replace(ctx, feature=feature), feature

    def walk_section(self, section: Section, ctx: _Ctx, *, title: bool = False) -> None:
        _, targets = txt.extract_markers(section.heading)
        feature: _Feature | None = None
        if not title:
            ctx, feature = self._enter(section, ctx, targets)
        used = feature is not None
        story: _Story | None = None
        heading_story = self._story_text(section.heading)
        stories = sum(1 for b in section.blocks if not _is_checkbox(b) and self._story_text(b.text) is not None)
        if heading_story is not None:
            self._heading = (None, [Marker(t, section.line) for t in targets])
            story, used = self._open_story(heading_story, section.line, ctx), True
        elif stories == 1 and feature is None:
            id_hint, _ = txt.id_prefix(txt.plain(section.heading))
            self._heading = (id_hint, [Marker(t, section.line) for t in targets])
            used = True
        if targets and not used:
            self.problem(
                section.line,
                "a dependency marker in a heading applies only to a numbered feature section "
                "or to a heading with exactly one user story",
            )
        story = self._walk_blocks(section.blocks, ctx, story, None)
        self._heading = None
        for child in section.children:
            if txt.is_ac_label(child.heading) and (story is not None or ctx.feature is not None):
                story = self._walk_blocks(child.blocks, ctx, story, _AC)
                for grandchild in child.children:
                    self.walk_section(grandchild, ctx)
            else:
                self._close(story)
                story = None
                self.walk_section(child, ctx)
        self._close(story)
        if feature is not None:
            self._finish_feature(feature, ctx)

    def _finish_feature(self, feature: _Feature, ctx: _Ctx) -> None:
        """The section's own ticket: from its acceptance criteria list, or from its prose when nothing else in it
        was a requirement; a section with neither is reported."""
        criteria = feature.criteria or ([] if feature.count else hd.sentences(" ".join(feature.prose)))
        if not criteria:
            if not feature.count:
                detail = "feature section without requirements or prose"
                self.ignored.append(
                    IgnoredItem(feature.title, self.path, feature.line, IgnoreReason.EMPTY_SECTION, detail)
                )
            return
        req = Requirement(ItemKind.SECTION, feature.line, feature.title, list(criteria), ctx.priority)
        req.id_hint, req.details = feature.id_hint, list(feature.prose)
        if feature.criteria and all(feature.checked):
            req.ignored, req.ignored_detail = IgnoreReason.DELIVERED, _ALL_CHECKED
        self._add(req, ctx)

    # ── blocks ──

    def _walk_blocks(self, blocks: list[Block], ctx: _Ctx, story: _Story | None, label: object) -> _Story | None:
        """Read a run of paragraphs and items; ``label`` is the label in force (a Priority, _AC or None).
        Returns the user story still open (it may get acceptance criteria from a following heading)."""
        for block in blocks:
            if not _is_checkbox(block):
                handled, story, label = self._structural(block, ctx, story, label)
                if handled:
                    continue
            assert isinstance(block, Item)  # noqa: S101 - _structural handles every paragraph
            if label == _AC and story is not None:
                self._criterion(block, story.req.criteria, story.checked, story.req.markers, section=False)
            elif label == _AC and ctx.feature is not None:
                feature = ctx.feature
                self._criterion(block, feature.criteria, feature.checked, feature.markers, section=True)
            else:
                self._item(block, ctx, label if isinstance(label, Priority) else None)
        return story

    def _structural(
        self, block: Block, ctx: _Ctx, story: _Story | None, label: object
    ) -> tuple[bool, _Story | None, object]:
        """A label, dependency marker, user story or paragraph: (handled, open story, label in force)."""
        text = block.text
        children = block.children if isinstance(block, Item) else []
        if (priority := txt.priority_label(text)) is not None:
            if not children:
                return True, story, priority
            self._close(self._walk_blocks(children, replace(ctx, priority=priority), None, None))
            return True, story, None
        if txt.is_ac_label(text):
            return (True, self._walk_blocks(children, ctx, story, _AC), None) if children else (True, story, _AC)
        if (targets := txt.marker_line(text)) is not None:
            if story is not None:
                story.req.markers.append(Marker(targets, block.line))
            elif ctx.feature is not None:
                ctx.feature.markers.append(Marker(targets, block.line, from_section=True))
            else:
                self.problem(block.line, _STRAY_MARKER)
            return True, story, label if isinstance(block, Item) else None
        if (found := self._story_text(text)) is not None:
            self._close(story)
            story = self._open_story(found, block.line, ctx)
            self._story_children(story, children)
            return True, story, None
        if isinstance(block, Para):
            body, inline = txt.extract_markers(text)
            if story is not None:
                story.req.details.append(body)
                story.req.markers += [Marker(t, block.line) for t in inline]
            elif ctx.feature is not None:
                ctx.feature.prose.append(body)
                ctx.feature.markers += [Marker(t, block.line, from_section=True) for t in inline]
            return True, story, None
        return False, story, label

    def _item(self, item: Item, ctx: _Ctx, label_priority: Priority | None) -> None:
        body, targets = txt.extract_markers(item.text)
        inline, body = txt.priority_prefix(body)
        id_hint, body = txt.id_prefix(body)
        priority = inline or label_priority or ctx.priority
        checkbox = item.check is not None
        if not (checkbox or priority is not None or ctx.feature is not None):
            self._close(self._walk_blocks(item.children, ctx, None, None))  # plain bullet: nested items still count
            return
        if not txt.plain(body):
            self.problem(item.line, "empty checkbox" if checkbox else "empty list item in a requirement list")
            return
        text = txt.collapse(body)
        kind = ItemKind.CHECKBOX if checkbox else ItemKind.LIST_ITEM
        req = Requirement(
            kind, item.line, text, [text], priority, id_hint=id_hint, markers=[Marker(t, item.line) for t in targets]
        )
        self._details(req, item.children)
        if item.checked:
            req.ignored, req.ignored_detail = IgnoreReason.DELIVERED, "already delivered (checked)"
        self._add(req, ctx)

    def _details(self, req: Requirement, children: list[Block]) -> None:
        """Nested items of a requirement are further criteria of its one ticket; nested prose is description."""
        for block in children:
            if (targets := txt.marker_line(block.text)) is not None and not _is_checkbox(block):
                req.markers.append(Marker(targets, block.line))
            elif isinstance(block, Para):
                if not txt.is_ac_label(block.text):
                    req.details.append(block.text)
            elif block.check is None and (txt.is_ac_label(block.text) or txt.priority_label(block.text)):
                self._details(req, block.children)
            else:
                self._criterion(block, req.criteria, [], req.markers, section=False)

    def _criterion(
        self, item: Item, criteria: list[str], checked: list[bool], markers: list[Marker], *, section: bool
    ) -> None:
        if (targets := txt.marker_line(item.text)) is not None and item.check is None:
            markers.append(Marker(targets, item.line, from_section=section))
            return
        body, targets_inline = txt.extract_markers(item.text)
        if not txt.plain(body):
            self.problem(item.line, "empty checkbox" if item.check is not None else "empty acceptance criterion")
            return
        criteria.append(txt.collapse(body))
        checked.append(item.checked)
        markers += [Marker(t, item.line, from_section=section) for t in targets_inline]
        for child in item.children:
            if isinstance(child, Item):
                self._criterion(child, criteria, checked, markers, section=section)

    # ── user stories ──

    def _story_text(self, text: str) -> str | None:
        body, _ = txt.extract_markers(text)
        _, body = txt.priority_prefix(body)
        _, body = txt.id_prefix(body)
        return text if txt.story(body) is not None else None

    def _open_story(self, text: str, line: int, ctx: _Ctx) -> _Story:
        body, targets = txt.extract_markers(text)
        inline, body = txt.priority_prefix(body)
        id_hint, body = txt.id_prefix(body)
        markers = [Marker(t, line) for t in targets]
        if self._heading is not None:
            id_hint = id_hint or self._heading[0]
            markers += self._heading[1]
            self._heading = None
        req = Requirement(
            ItemKind.USER_STORY, line, txt.collapse(body), [], inline or ctx.priority, id_hint=id_hint, markers=markers
        )
        return _Story(req, ctx)

    def _story_children(self, story: _Story, children: list[Block]) -> None:
        """A bulleted story's nested blocks: its acceptance criteria list, dependency markers, notes."""
        in_list = False
        for block in children:
            if (targets := txt.marker_line(block.text)) is not None and not _is_checkbox(block):
                story.req.markers.append(Marker(targets, block.line))
            elif not _is_checkbox(block) and txt.is_ac_label(block.text):
                in_list = not (isinstance(block, Item) and block.children)
                for child in block.children if isinstance(block, Item) else []:
                    if isinstance(child, Item):
                        self._criterion(child, story.req.criteria, story.checked, story.req.markers, section=False)
            elif isinstance(block, Item) and in_list:
                self._criterion(block, story.req.criteria, story.checked, story.req.markers, section=False)
            else:
                in_list = False
                story.req.details.append(block.text)

    def _close(self, story: _Story | None) -> None:
        if story is None:
            return
        if not story.req.criteria:
            self.problem(
                story.req.line, "user story without acceptance criteria: follow it with an 'Acceptance criteria:' list"
            )
            return
        if all(story.checked):
            story.req.ignored, story.req.ignored_detail = IgnoreReason.DELIVERED, _ALL_CHECKED
        self._add(story.req, story.ctx)

    # ── bookkeeping ──

    def _add(self, req: Requirement, ctx: _Ctx) -> None:
        if ctx.feature is not None:
            req.section = ctx.feature.heading
        if req.ignored is None and ctx.excluded is not None:
            req.ignored, req.ignored_detail = IgnoreReason.OUT_OF_SCOPE, f'in section "{ctx.excluded}"'
        elif req.ignored is None and req.priority is not None and not req.priority.ticketed:
            reason = IgnoreReason.COULD_HAVE if req.priority is Priority.COULD else IgnoreReason.WONT_HAVE
            req.ignored, req.ignored_detail = reason, f"{req.priority.label}: not ticketed"
        feature = ctx.feature
        if feature is not None:
            self._features[id(req)] = feature
        while feature is not None:
            feature.count += 1
            if req.ignored is None:
                feature.ref.members.append(req)
            feature = feature.parent
        self.requirements.append(req)


def _is_checkbox(block: Block) -> bool:
    return isinstance(block, Item) and block.check is not None


def read_markdown(text: str, path: str) -> tuple[str, MarkdownReader, list[Assumption]]:
    """(title, the reader with its requirements, assumptions); raises InputError with every problem found."""
    root = parse_blocks(text)
    reader = MarkdownReader(path)
    reader.walk(root)
    if reader.problems:
        raise InputError(sorted(reader.problems, key=lambda p: p.line or 0))
    first = root.children[0] if root.children else None
    title = txt.plain(first.heading) if first is not None and first.level == 1 else path.rsplit("/", 1)[-1]
    assumptions = [
        Assumption(found, path, number)
        for number, line in content_lines(text)
        if (found := txt.assumption_text(line)) is not None
    ]
    return title, reader, assumptions
