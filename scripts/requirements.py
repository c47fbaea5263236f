"""Print the requirements of pyproject.toml's [project] dependencies and the given extras.

Self-references such as ``dataknobs-data[test]`` are expanded, so the list installs the
development tools without building the package itself (``maturin develop`` does that).

    python scripts/requirements.py test dev   # one requirement per line
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def requirements(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = re.sub(r"[-_.]+", "-", project["name"]).lower()
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    out: list[str] = list(project.get("dependencies", []))
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            raise SystemExit(f"requirements: no extra {extra!r} in pyproject.toml")
        for req in optional[extra]:
            match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*\[([^\]]*)\]\s*$", req)
            if match and re.sub(r"[-_.]+", "-", match.group(1)).lower() == name:
                todo.extend(part.strip() for part in match.group(2).split(","))
            else:
                out.append(req)
    return list(dict.fromkeys(out))


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:] or ["dev"])))
