"""Fixtures for the ecosystem suites: the sdists of the installed langgraph-prebuilt and
langchain (their own tests), downloaded at test time, and a runner that executes those
tests in a pytest subprocess with our classes swapped in (``plugins/``).

The suites are never copied into this repository. Downloads are cached in
``.ecosystem-cache/`` at the repository root (gitignored); a failed download skips with
the reason, anything else fails.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".ecosystem-cache"
PLUGINS = Path(__file__).resolve().parent / "plugins"


def sdist_tests(dist: str, package_dir: str) -> Path:
    """Download and unpack ``dist``'s sdist at the installed version; return its root.

    The sdist's own package folder is deleted so the installed package is what runs.
    """
    version = importlib.metadata.version(dist)
    target = CACHE / f"{dist}-{version}"
    marker = target / ".hitl-extracted"
    if marker.exists():
        return target / "src"
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    norm = dist.replace("-", "_")
    archives = list(downloads.glob(f"{norm}-{version}.tar.gz"))
    if not archives:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--disable-pip-version-check", "-d", str(downloads), f"{dist}=={version}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        archives = list(downloads.glob(f"{norm}-{version}.tar.gz"))
        if proc.returncode != 0 or not archives:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            pytest.skip(f"could not download the {dist}=={version} sdist: {' | '.join(tail)}")
    shutil.rmtree(target, ignore_errors=True)
    tmp = CACHE / f".tmp-{dist}-{version}"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archives[0]) as tar:
        tar.extractall(tmp, filter="data")
    (inner,) = [p for p in tmp.iterdir() if p.is_dir()]
    shutil.rmtree(inner / package_dir)  # test the installed package, not the sdist's copy
    target.mkdir(parents=True)
    inner.rename(target / "src")
    shutil.rmtree(tmp, ignore_errors=True)
    marker.write_text(version)
    return target / "src"


@dataclass
class SuiteRun:
    """Counts from one run's JUnit XML (one entry per test case)."""

    mode: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    header: str = ""
    output: str = ""

    @property
    def summary(self) -> str:
        return (
            f"{self.mode}: {len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped"
        )


def run_suite(
    root: Path,
    files: Sequence[str],
    *,
    plugin: str,
    mode: str,
    tmp: Path,
    extra: Sequence[str] = (),
) -> SuiteRun:
    """Run ``files`` (relative to the sdist ``root``) under ``plugin`` in ``mode``."""
    junit = tmp / f"junit-{plugin}-{mode}.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["HITL_ECOSYSTEM_MODE"] = mode
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.setdefault("LANGGRAPH_TEST_FAST", "true")
    cmd = [
        sys.executable, "-m", "pytest", *files,
        "-c", str(root / "pyproject.toml"), "--rootdir", str(root),
        "-o", "addopts=", "-p", "no:cacheprovider", "-p", plugin,
        "-p", "no:langsmith", "-p", "no:phoenix",
        "-o", "asyncio_default_fixture_loop_scope=function",
        "-rfE", f"--junitxml={junit}", *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    run = SuiteRun(mode=mode, output=proc.stdout[-20000:] + proc.stderr[-5000:])
    run.header = next(
        (line for line in proc.stdout.splitlines() if line.startswith("hitl-ecosystem:")), ""
    )
    if not junit.exists():
        raise AssertionError(f"the {mode} run produced no report:\n{run.output}")
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            run.failed.append(name)
        elif "skipped" in tags:
            run.skipped.append(name)
        else:
            run.passed.append(name)
    return run


@pytest.fixture(scope="module")
def suite_runner(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., SuiteRun]:
    tmp = tmp_path_factory.mktemp("ecosystem")

    def run(root: Path, files: Sequence[str], *, plugin: str, mode: str, **kw: object) -> SuiteRun:
        return run_suite(root, files, plugin=plugin, mode=mode, tmp=tmp, **kw)  # type: ignore[arg-type]

    return run
