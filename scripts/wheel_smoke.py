"""Build the wheel, install it into a fresh virtual environment and run the README quickstart.

    python scripts/wheel_smoke.py [--python python3.11] [--release] [--keep]

This is what a user gets from ``pip install dataknobs-data-rs``: the wheel ``maturin build``
makes (dev profile by default, to keep CI time down; ``--release`` for the release profile),
installed with its dependencies into a new venv of ``--python`` (python3.11, the oldest
Python the abi3 wheel supports), away from the source tree. There it checks the installed
distribution's name and version, runs every ```python block of README.md's Quickstart in a
temporary folder, and runs the ``dataknobs-data`` command. Exit status 0 means all passed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quickstart_blocks(readme: str) -> list[str]:
    """The python blocks of README's ``## Quickstart`` section, in order."""
    match = re.search(r"^## Quickstart\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    if match is None:
        raise SystemExit("wheel_smoke: README.md has no '## Quickstart' section")
    blocks = re.findall(r"^```python\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)
    if not blocks:
        raise SystemExit("wheel_smoke: README.md's Quickstart has no python block")
    return blocks


def run(cmd: list[str], **kwargs: object) -> None:
    print("wheel_smoke: $", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--python", default=shutil.which("python3.11") or sys.executable)
    parser.add_argument("--release", action="store_true", help="release profile")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    work = Path(tempfile.mkdtemp(prefix="dkdata-wheel-"))
    # The source tree must not be importable in the venv: the wheel alone is tested.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    try:
        maturin = shutil.which("maturin", path=str(Path(sys.executable).parent)) or "maturin"
        build = [maturin, "build", "--quiet", "--locked", "--out", str(work / "dist")]
        run([*build, "--release"] if args.release else build, cwd=ROOT, env=env)
        wheels = sorted((work / "dist").glob("*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"wheel_smoke: expected one wheel, found {wheels}")
        wheel = wheels[0]
        if "abi3" not in wheel.name:
            raise SystemExit(f"wheel_smoke: {wheel.name} is not an abi3 wheel")

        venv = work / "venv"
        run([args.python, "-m", "venv", str(venv)], env=env)
        py = str(venv / "bin" / "python")
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], env=env)

        app = work / "app"
        app.mkdir()
        check = (
            "import importlib.metadata as m, dataknobs_data as d;"
            f"assert m.version({project['name']!r}) == d.__version__ == {project['version']!r};"
            "assert 'site-packages' in d.__file__, d.__file__;"
            "print('wheel_smoke: installed', d.__version__, 'from', d.__file__)"
        )
        run([py, "-c", check], cwd=app, env=env)
        for i, block in enumerate(quickstart_blocks((ROOT / "README.md").read_text())):
            script = app / f"quickstart_{i}.py"
            script.write_text(block)
            run([py, str(script)], cwd=app, env=env)
        command = str(venv / "bin" / "dataknobs-data")
        run([command, "count", f"sqlite://{app / 'people.db'}"], cwd=app, env=env)
    finally:
        if args.keep:
            print(f"wheel_smoke: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("wheel_smoke: the wheel installs and runs the README quickstart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
