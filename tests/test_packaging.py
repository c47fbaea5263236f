"""The distribution's name and version, and the warning when the pure-Python one is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import dataknobs_data

ROOT = Path(__file__).resolve().parent.parent


def _import_in_subprocess(extra_path: Path | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    paths = [str(p) for p in (extra_path,) if p is not None]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).strip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", "import dataknobs_data"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_distribution_name_is_our_own() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "dataknobs-data-rs"
    for extra in ("pandas", "arrow", "polars", "duckdb", "yaml", "otel"):
        assert extra in project["optional-dependencies"], extra


def test_version_comes_from_the_metadata() -> None:
    import importlib.metadata

    try:
        installed = importlib.metadata.version("dataknobs-data-rs")
    except importlib.metadata.PackageNotFoundError:
        installed = "0+unknown"
    assert dataknobs_data.__version__ == installed


def test_no_warning_without_the_original() -> None:
    done = _import_in_subprocess(None)
    assert done.returncode == 0, done.stderr
    assert "pure-Python" not in done.stderr


def test_warns_when_the_pure_python_package_is_installed_too(tmp_path: Path) -> None:
    # What `pip install dataknobs-data` leaves in site-packages: its dist-info metadata.
    info = tmp_path / "dataknobs_data-0.11.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dataknobs-data\nVersion: 0.11.0\n")
    done = _import_in_subprocess(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" in done.stderr
    assert "dataknobs-data 0.11.0 (the pure-Python package) are installed" in done.stderr
    assert "pip uninstall -y dataknobs-data dataknobs-data-rs" in done.stderr
