"""The Lambda bundle installs ``functions/requirements.lock``: every package at an exact version with its
hashes, in step with what ``functions/requirements.txt`` declares. ``scripts/lock`` regenerates it.

No resolution here (that needs the index): the lock is read as text and held to the declarations.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from infra.bundling import PROJECT_ROOT, RUNTIME_LOCK, RUNTIME_REQUIREMENTS, PipBundling

REGENERATE = "out of date: run scripts/lock and commit functions/requirements.lock"
DECLARED = "-r functions/requirements.txt"
SHA256 = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]
    via: frozenset[str]  # canonical names of the packages that need it, or DECLARED

    @property
    def version(self) -> Version:
        [specifier] = self.requirement.specifier
        return Version(specifier.version)


def declared() -> dict[str, Requirement]:
    lines = RUNTIME_REQUIREMENTS.read_text().splitlines()
    requirements = [Requirement(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def locked() -> dict[str, Pin]:
    """The lock's entries: a requirement line (continued by backslashes), its hashes, its ``# via`` notes."""
    pins: dict[str, Pin] = {}
    entry: list[str] = []
    via: set[str] = set()

    def close() -> None:
        if entry:
            text = " ".join(entry)
            requirement = Requirement(text.split(" --hash", 1)[0])
            name = canonicalize_name(requirement.name)
            pins[name] = Pin(requirement, tuple(SHA256.findall(text)), frozenset(via))
        entry.clear()
        via.clear()

    for raw in RUNTIME_LOCK.read_text().splitlines():
        line = raw.strip()
        if raw[:1].isalnum():
            close()
        if line.startswith("#"):
            note = line.lstrip("#").strip()
            if entry and note.startswith("via"):
                note = note.removeprefix("via").strip()
            if entry and note:
                via.add(note if note.startswith("-r ") else canonicalize_name(note))
        elif line:
            entry.append(line.removesuffix("\\").strip())
    close()
    return pins


def test_every_declared_bundle_requirement_is_pinned_in_the_lock_within_its_range():
    pins = locked()
    for name, requirement in declared().items():
        assert name in pins, f"{requirement} is not in the lock: {REGENERATE}"
        version = pins[name].version
        assert requirement.specifier.contains(version, prereleases=True), (
            f"the lock pins {name}=={version}, outside {requirement}: {REGENERATE}"
        )


def test_every_locked_package_has_an_exact_version_and_hashes():
    pins = locked()
    assert pins, "the lock is empty"
    for name, pin in pins.items():
        [specifier] = pin.requirement.specifier
        assert specifier.operator == "==" and "*" not in specifier.version, f"{pin.requirement} is not exact"
        assert not pin.requirement.marker and not pin.requirement.extras and not pin.requirement.url, name
        assert pin.hashes, f"{name} has no --hash=sha256: pip's --require-hashes would refuse the lock"


def test_the_lock_holds_nothing_but_the_declared_requirements_and_what_they_pull_in():
    """Each entry is there for a declared requirement or for another entry (uv's ``# via`` notes)."""
    pins, requirements = locked(), declared()
    for name, pin in pins.items():
        assert pin.via, f"{name} says nothing of why it is locked: {REGENERATE}"
        for reason in pin.via:
            if reason == DECLARED:
                assert name in requirements, f"{name} is locked as declared but is not declared: {REGENERATE}"
            else:
                assert reason in pins, f"{name} is locked for {reason}, which is not locked: {REGENERATE}"


def test_bundle_requirements_are_the_projects_runtime_dependencies_without_boto3():
    """The tests run against pyproject's dependencies: the bundle declares the same ranges."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = {canonicalize_name(r.name): r for r in map(Requirement, project)}
    del runtime["boto3"]  # the Lambda runtime provides it
    bundle = declared()
    assert sorted(bundle) == sorted(runtime)
    for name, requirement in bundle.items():
        assert requirement.specifier == runtime[name].specifier, f"{requirement} vs pyproject's {runtime[name]}"


@pytest.mark.parametrize(("architecture", "python"), [("arm64", "3.13"), ("x86_64", "3.12")])
def test_the_bundle_installs_the_lock_with_hashes_required(tmp_path: Path, architecture: str, python: str):
    command = PipBundling(PROJECT_ROOT / "rules", architecture, python).pip_command(tmp_path)
    assert "--require-hashes" in command
    assert command[command.index("-r") + 1] == str(RUNTIME_LOCK)
    assert command.count("-r") == 1 and str(RUNTIME_REQUIREMENTS) not in command
    assert "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == python


def test_the_lock_names_the_script_that_writes_it():
    assert "#    scripts/lock" in RUNTIME_LOCK.read_text().split("\n", 3)[1]
    script = PROJECT_ROOT / "scripts" / "lock"
    assert os.access(script, os.X_OK)
    assert str(RUNTIME_LOCK.relative_to(PROJECT_ROOT)) in script.read_text()
