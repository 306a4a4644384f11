"""The Lambda bundle's own code: the package the functions run, without the operator's tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.bundling import PROJECT_ROOT, TOOLS_ONLY, copy_sources


def test_the_bundle_leaves_out_the_cli_the_bench_and_the_local_stack(tmp_path: Path):
    copy_sources(tmp_path, PROJECT_ROOT / "rules")
    packages = {path.name for path in (tmp_path / "nudge").iterdir() if path.is_dir()}
    assert not packages & set(TOOLS_ONLY)
    assert {"engine", "evaluator", "delivery", "adapters", "handlers", "wiring"} <= packages
    assert (tmp_path / "nudge" / "wiring" / "evaluator.py").exists()
    assert (tmp_path / "rules" / "cart_abandonment.yaml").exists()


def test_every_handler_imports_from_the_bundle_alone(tmp_path: Path):
    """Nothing a function loads may live in a package the bundle leaves out."""
    copy_sources(tmp_path, PROJECT_ROOT / "rules")
    code = "import nudge.handlers.evaluator, nudge.handlers.delivery, nudge.handlers.unsubscribe"
    env = {"PYTHONPATH": str(tmp_path), "AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_TRACE_DISABLED": "1"}
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
