"""Build the Lambda code asset without Docker: our package, the rules, and pip-installed wheels.

pip downloads wheels for the Lambda platform (manylinux, arm64 or x86_64, the function's Python
version, binary only), so a laptop of any architecture builds a bundle that runs on Lambda. It
installs ``functions/requirements.lock`` (every package pinned, with its hashes: ``scripts/lock``
writes it from ``functions/requirements.txt``) in hash-checking mode, so two deploys of one commit
ship the same bytes. boto3 is left out: the runtime provides it. Tests skip bundling
(``aws:cdk:bundling-stacks: []``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNTIME_REQUIREMENTS = PROJECT_ROOT / "functions" / "requirements.txt"
"""What the bundle needs, as ranges: the input of ``scripts/lock``."""
RUNTIME_LOCK = PROJECT_ROOT / "functions" / "requirements.lock"
"""What the bundle installs: ``RUNTIME_REQUIREMENTS`` and their dependencies, exact versions and hashes."""
PROVIDED_BY_RUNTIME = ("botocore", "botocore-*.dist-info", "jmespath", "jmespath-*.dist-info", "bin")
TOOLS_ONLY = ("cli", "bench", "local")
"""Packages of ``nudge`` that only run on an operator's machine: never in a function's bundle."""
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "py.typed", *TOOLS_ONLY)


def copy_sources(out: Path, rules_dir: Path) -> None:
    """The ``nudge`` package without its tools, and the rules folder beside it."""
    shutil.copytree(PROJECT_ROOT / "functions" / "nudge", out / "nudge", ignore=_IGNORED, dirs_exist_ok=True)
    shutil.copytree(rules_dir, out / "rules", dirs_exist_ok=True)


@jsii.implements(ILocalBundling)
class PipBundling:
    """Copies ``functions/nudge`` and ``rules/`` and installs the runtime wheels for Lambda."""

    def __init__(self, rules_dir: Path, architecture: str, python_version: str) -> None:
        self.rules_dir = rules_dir
        self.platform = "manylinux2014_aarch64" if architecture == "arm64" else "manylinux2014_x86_64"
        self.python_version = python_version

    def pip_command(self, out: Path) -> list[str]:
        """Installs the lock, and nothing it does not pin: pip refuses a file whose hash is not listed."""
        return [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--target", str(out), "--platform", self.platform, "--implementation", "cp",
            "--python-version", self.python_version, "--only-binary=:all:", "--upgrade",
            "--require-hashes", "-r", str(RUNTIME_LOCK),
        ]  # fmt: skip

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        out = Path(output_dir)
        copy_sources(out, self.rules_dir)
        subprocess.run(self.pip_command(out), check=True)
        # aws-xray-sdk pulls in botocore (30 MB); the Lambda runtime already ships it with boto3.
        for provided in PROVIDED_BY_RUNTIME:
            for path in out.glob(provided):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        return True


def function_code(rules_dir: Path, architecture: str, python_version: str) -> lambda_.Code:
    """The code asset shared by every Nudge function (hashed on its output, so rule edits redeploy)."""
    return lambda_.Code.from_asset(
        str(PROJECT_ROOT / "functions"),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python" + python_version),
            local=PipBundling(rules_dir, architecture, python_version),
        ),
    )
