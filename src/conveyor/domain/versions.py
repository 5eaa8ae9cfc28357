"""Milestone release versions (ARCHITECTURE.md §8 "Milestones"; seed 001 Milestone Completion Protocol).

The rules, given the repository's tags and the active milestone of the build-spec:

- A release tag is ``v<MAJOR>.<MINOR>.<PATCH>``; a bare ``MAJOR.MINOR.PATCH`` tag counts too, so that a
  version released without the ``v`` is never reused. Other tags (``latest``, ``v1.2``, release candidates
  such as ``v0.1.0-rc.1``) are not releases and are ignored.
- The MVP is released once some release tag is 0.1.0 or higher.
- Before the MVP: releases are ``0.0.x`` with x ≥ 1. ``0.1.0`` is the MVP's release and only the milestone
  the build-spec marks ``mvp: true`` may take it; that milestone releases as ``0.1.0`` and nothing else.
- After the MVP: minor versions only: ``0.2.0``, ``0.3.0``... (same major, patch 0, a higher minor). A patch
  or major request is refused. A milestone still marked ``mvp: true`` after the MVP is released is an
  out-of-date flag, not a reason to stop: it releases like any other milestone, with a note.
- Versions only go up: a version whose tag exists, or that is not above the highest release, is refused.
- Nothing requested: the build-spec's ``milestone.version`` when it obeys the rules and is above the highest
  release (a note says why it was passed over otherwise), else the next version: the next patch after the
  highest ``0.0.x`` before the MVP (``0.0.1`` in a repository without releases), ``0.1.0`` for the MVP
  milestone, the next minor after it.

A refusal raises :class:`VersionRefusedError` with the version and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from conveyor.domain.build_spec import MilestoneSpec
from conveyor.domain.errors import ConveyorError

TAG_PREFIX = "v"
_VERSION = re.compile(r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Self:
        """``1.2.3`` or ``v1.2.3``; raise ValueError for anything else (pre-releases included)."""
        raw = text.strip()
        match = _VERSION.fullmatch(raw.removeprefix(TAG_PREFIX))
        if match is None:
            raise ValueError(f"{text!r} is not a version of the form MAJOR.MINOR.PATCH (for example 0.0.1)")
        return cls(int(match["major"]), int(match["minor"]), int(match["patch"]))

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}{self}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


MVP_VERSION = Version(0, 1, 0)


class VersionSource(StrEnum):
    REQUESTED = "requested"  # given on the command line
    BUILD_SPEC = "build-spec"  # milestone.version of automations/build-spec.yaml
    NEXT = "next"  # computed from the tags


class VersionRefusedError(ConveyorError):
    """A release version the rules do not allow; ``reason`` says which rule and what would be allowed."""

    def __init__(self, version: str, reason: str) -> None:
        self.version, self.reason = version, reason
        super().__init__(f"version {version} refused: {reason}")


@dataclass(frozen=True)
class VersionDecision:
    version: Version
    source: VersionSource
    mvp: bool  # this release is the MVP's (0.1.0)
    notes: tuple[str, ...] = ()  # why the build-spec version or the mvp flag was passed over, for the report

    @property
    def tag(self) -> str:
        return self.version.tag


def release_tag_version(tag: str) -> Version | None:
    """The version a release tag names, or None for a tag that is not a release (see the module rules)."""
    try:
        return Version.parse(tag)
    except ValueError:
        return None


def released_versions(tags: Iterable[str]) -> list[Version]:
    """The versions of the release tags among ``tags``, lowest first, without repeats."""
    return sorted({v for v in map(release_tag_version, tags) if v is not None})


def mvp_released(tags: Iterable[str]) -> bool:
    return any(v >= MVP_VERSION for v in released_versions(tags))


def next_version(released: list[Version], milestone: MilestoneSpec) -> Version:
    """The version the rules give when nothing is requested and the build-spec's version does not apply."""
    highest = released[-1] if released else None
    if highest is None or highest < MVP_VERSION:
        if milestone.mvp:
            return MVP_VERSION
        return Version(0, 0, (highest.patch if highest else 0) + 1)
    return Version(highest.major, highest.minor + 1, 0)


def check_version(version: Version, released: list[Version], milestone: MilestoneSpec) -> None:
    """Raise VersionRefusedError when ``version`` breaks a rule; ``released`` is sorted, lowest first."""
    text = str(version)
    if version in released:
        raise VersionRefusedError(text, f"tag {version.tag} already exists; a released version is never reused")
    highest = released[-1] if released else None
    if highest is not None and version < highest:
        raise VersionRefusedError(text, f"it is below the highest release {highest.tag}; versions only go up")
    if highest is None or highest < MVP_VERSION:
        _check_before_mvp(version, released, milestone)
    elif version.major != highest.major or version.patch != 0:
        kind = "a major" if version.major != highest.major else "a patch"
        raise VersionRefusedError(
            text,
            f"it is {kind} version; after the MVP each milestone releases a minor version "
            f"(next: {next_version(released, milestone)})",
        )


def _check_before_mvp(version: Version, released: list[Version], milestone: MilestoneSpec) -> None:
    text = str(version)
    if milestone.mvp and version != MVP_VERSION:
        raise VersionRefusedError(
            text, f"the milestone is marked as the MVP (mvp: true in the build-spec) and releases as {MVP_VERSION}"
        )
    if version == MVP_VERSION:
        if not milestone.mvp:
            raise VersionRefusedError(
                text,
                f"{MVP_VERSION} is reserved for the MVP milestone; set milestone.mvp: true in "
                f"automations/build-spec.yaml if this milestone is the MVP "
                f"(next before the MVP: {next_version(released, milestone)})",
            )
        return
    if version.major != 0 or version.minor != 0:
        raise VersionRefusedError(
            text,
            f"before the MVP ({MVP_VERSION}) releases are 0.0.x (next: {next_version(released, milestone)})",
        )
    if version.patch == 0:
        raise VersionRefusedError(text, "0.0.0 is not a release; the first release is 0.0.1")


def release_version(existing_tags: Iterable[str], milestone: MilestoneSpec, requested: str | None) -> VersionDecision:
    """The version of the milestone's release (rules in the module docstring), or VersionRefusedError."""
    released = released_versions(existing_tags)
    notes: list[str] = []
    if milestone.mvp and released and released[-1] >= MVP_VERSION:
        notes.append(
            f"milestone {milestone.name!r} is marked mvp: true, but the MVP is already released "
            f"({released[-1].tag} exists): released as a minor version"
        )
        milestone = milestone.model_copy(update={"mvp": False})
    if requested is not None:
        try:
            version = Version.parse(requested)
        except ValueError as exc:
            raise VersionRefusedError(requested, str(exc)) from None
        check_version(version, released, milestone)
        return VersionDecision(version, VersionSource.REQUESTED, version == MVP_VERSION, tuple(notes))
    spec_version = Version.parse(milestone.version)
    highest = released[-1] if released else None
    if highest is not None and spec_version <= highest:
        notes.append(f"build-spec milestone.version {spec_version} not used: {highest.tag} is already released")
    else:
        try:
            check_version(spec_version, released, milestone)
        except VersionRefusedError as refused:
            notes.append(f"build-spec milestone.version {spec_version} not used: {refused.reason}")
        else:
            return VersionDecision(spec_version, VersionSource.BUILD_SPEC, spec_version == MVP_VERSION, tuple(notes))
    version = next_version(released, milestone)
    return VersionDecision(version, VersionSource.NEXT, version == MVP_VERSION, tuple(notes))
