"""Release versions: 0.0.x before the MVP, 0.1.0 only for the MVP milestone, minor versions after it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.build_spec import MilestoneSpec
from conveyor.domain.errors import ConveyorError
from conveyor.domain.versions import (
    MVP_VERSION,
    Version,
    VersionRefusedError,
    VersionSource,
    mvp_released,
    release_tag_version,
    release_version,
    released_versions,
)


def milestone(version: str = "0.0.1", *, mvp: bool = False, name: str = "M1") -> MilestoneSpec:
    return MilestoneSpec(name=name, version=version, mvp=mvp)


def refused(tags: list[str], spec: MilestoneSpec, requested: str | None) -> str:
    with pytest.raises(VersionRefusedError) as caught:
        release_version(tags, spec, requested)
    assert isinstance(caught.value, ConveyorError)
    return str(caught.value)


# -- tags ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("v0.0.1", Version(0, 0, 1)),
        ("0.2.0", Version(0, 2, 0)),  # a bare version is a release too: never reused
        ("v10.20.30", Version(10, 20, 30)),
        ("v0.1.0-rc.1", None),  # release candidates are not releases
        ("latest", None),
        ("v1.2", None),
        ("v01.0.0", None),
        ("release-0.0.1", None),
        ("V0.0.1", None),
    ],
)
def test_release_tag_version(tag: str, expected: Version | None) -> None:
    assert release_tag_version(tag) == expected


def test_released_versions_sorted_without_repeats_and_mvp_detection() -> None:
    tags = ["v0.0.10", "v0.0.2", "0.0.2", "nightly", "v0.1.0-rc.1"]
    assert released_versions(tags) == [Version(0, 0, 2), Version(0, 0, 10)]
    assert not mvp_released(tags)
    assert mvp_released([*tags, "v0.1.0"])


# -- before the MVP -----------------------------------------------------------------------------------------


def test_first_release_of_a_repository_is_0_0_1_from_the_build_spec() -> None:
    decision = release_version([], milestone(), None)
    assert (str(decision.version), decision.tag, decision.source, decision.mvp) == (
        "0.0.1",
        "v0.0.1",
        VersionSource.BUILD_SPEC,
        False,
    )
    assert decision.notes == ()


def test_next_patch_after_the_highest_0_0_x_ignoring_other_tags() -> None:
    decision = release_version(["v0.0.1", "v0.0.2", "deploy-7", "v0.0.9-rc.1"], milestone(), None)
    assert decision.tag == "v0.0.3"
    assert decision.source is VersionSource.NEXT
    assert decision.notes == ("build-spec milestone.version 0.0.1 not used: v0.0.2 is already released",)


def test_build_spec_version_is_used_when_higher_and_valid() -> None:
    decision = release_version(["v0.0.2"], milestone("0.0.7"), None)
    assert (decision.tag, decision.source) == ("v0.0.7", VersionSource.BUILD_SPEC)


def test_build_spec_0_1_0_without_mvp_is_passed_over_with_the_reason() -> None:
    decision = release_version(["v0.0.2"], milestone("0.1.0"), None)
    assert decision.tag == "v0.0.3"
    assert len(decision.notes) == 1
    assert "0.1.0 not used" in decision.notes[0]
    assert "reserved for the MVP milestone" in decision.notes[0]


def test_mvp_milestone_releases_0_1_0() -> None:
    decision = release_version(["v0.0.4"], milestone(mvp=True), None)
    assert (decision.version, decision.mvp, decision.source) == (MVP_VERSION, True, VersionSource.NEXT)
    assert decision.notes == ("build-spec milestone.version 0.0.1 not used: v0.0.4 is already released",)
    fresh = release_version([], milestone(mvp=True), None)
    assert fresh.tag == "v0.1.0"
    assert "0.0.1 not used: the milestone is marked as the MVP" in fresh.notes[0]
    spec = release_version(["v0.0.4"], milestone("0.1.0", mvp=True), None)
    assert (spec.tag, spec.source, spec.notes) == ("v0.1.0", VersionSource.BUILD_SPEC, ())


def test_requested_versions_before_the_mvp() -> None:
    assert release_version(["v0.0.1"], milestone(), "0.0.5").tag == "v0.0.5"
    assert release_version(["v0.0.1"], milestone(), "v0.0.2").source is VersionSource.REQUESTED
    assert release_version([], milestone(mvp=True), "0.1.0").mvp


@pytest.mark.parametrize(
    ("tags", "spec", "requested", "reason"),
    [
        (["v0.0.1"], milestone(), "0.1.0", "0.1.0 is reserved for the MVP milestone; set milestone.mvp: true"),
        ([], milestone(mvp=True), "0.0.3", "marked as the MVP (mvp: true in the build-spec) and releases as 0.1.0"),
        (["v0.0.1"], milestone(), "0.2.0", "before the MVP (0.1.0) releases are 0.0.x (next: 0.0.2)"),
        (["v0.0.1"], milestone(), "1.0.0", "before the MVP (0.1.0) releases are 0.0.x"),
        ([], milestone(), "0.0.0", "0.0.0 is not a release"),
        (["v0.0.1", "v0.0.3"], milestone(), "0.0.3", "tag v0.0.3 already exists"),
        (["0.0.3"], milestone(), "v0.0.3", "tag v0.0.3 already exists"),
        (["v0.0.1", "v0.0.3"], milestone(), "0.0.2", "below the highest release v0.0.3"),
        ([], milestone(), "banana", "'banana' is not a version of the form MAJOR.MINOR.PATCH"),
        ([], milestone(), "0.0.1-rc.1", "is not a version"),
    ],
)
def test_refusals_before_the_mvp(tags: list[str], spec: MilestoneSpec, requested: str, reason: str) -> None:
    message = refused(tags, spec, requested)
    assert reason in message
    assert message.startswith(f"version {requested.removeprefix('v')} refused: ")


# -- after the MVP ------------------------------------------------------------------------------------------


def test_minor_versions_after_the_mvp() -> None:
    tags = ["v0.0.1", "v0.0.2", "v0.1.0"]
    assert release_version(tags, milestone(), None).tag == "v0.2.0"
    assert release_version([*tags, "v0.2.0"], milestone(), None).tag == "v0.3.0"
    assert release_version(tags, milestone(), "0.4.0").tag == "v0.4.0"  # skipping a minor is allowed
    assert release_version(tags, milestone("0.5.0"), None).source is VersionSource.BUILD_SPEC


@pytest.mark.parametrize(
    ("requested", "reason"),
    [
        ("0.2.1", "it is a patch version; after the MVP each milestone releases a minor version (next: 0.3.0)"),
        ("1.0.0", "it is a major version"),
        ("0.1.5", "below the highest release v0.2.0"),
        ("0.2.0", "tag v0.2.0 already exists"),
        ("0.0.9", "below the highest release"),
    ],
)
def test_refusals_after_the_mvp(requested: str, reason: str) -> None:
    assert reason in refused(["v0.1.0", "v0.2.0"], milestone(), requested)


def test_build_spec_patch_after_the_mvp_is_passed_over() -> None:
    decision = release_version(["v0.1.0"], milestone("0.1.1"), None)
    assert decision.tag == "v0.2.0"
    assert "it is a patch version" in decision.notes[0]


def test_a_stale_mvp_flag_after_the_mvp_releases_a_minor_with_a_note() -> None:
    decision = release_version(["v0.1.0"], milestone(mvp=True, name="Beta"), None)
    assert (decision.tag, decision.mvp) == ("v0.2.0", False)
    assert "'Beta' is marked mvp: true, but the MVP is already released (v0.1.0 exists)" in decision.notes[0]
    assert "tag v0.1.0 already exists" in refused(["v0.1.0"], milestone(mvp=True), "0.1.0")


# -- properties ---------------------------------------------------------------------------------------------

_versions = st.builds(Version, st.integers(0, 1), st.integers(0, 4), st.integers(0, 6))
_tags = st.lists(
    st.one_of(_versions.map(lambda v: v.tag), _versions.map(str), st.sampled_from(["latest", "v0.1.0-rc.1"])),
    max_size=8,
)
_specs = st.builds(milestone, _versions.map(str), mvp=st.booleans())


@given(_tags, _specs, st.one_of(st.none(), _versions.map(str)))
def test_a_decided_version_is_new_highest_and_follows_the_rules(
    tags: list[str], spec: MilestoneSpec, requested: str | None
) -> None:
    released = released_versions(tags)
    try:
        decision = release_version(tags, spec, requested)
    except VersionRefusedError as exc:
        assert requested is not None, "only a request may be refused"
        assert exc.reason
        return
    version = decision.version
    assert decision.tag not in tags and str(version) not in tags
    assert all(version > v for v in released)
    if released and released[-1] >= MVP_VERSION:
        assert version.major == released[-1].major and version.patch == 0
    elif version == MVP_VERSION:
        assert spec.mvp and decision.mvp
    else:
        assert (version.major, version.minor) == (0, 0) and version.patch >= 1 and not spec.mvp
