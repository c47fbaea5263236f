"""Line coverage of rust/core per file, from an instrumented ``cargo test --workspace`` run.

    python scripts/rust_coverage.py tools                    # the tools' folder, or why not
    python scripts/rust_coverage.py report DIR cargo test ...  # after the tests

``make test-rust`` builds the workspace's crates with ``-C instrument-coverage``
(scripts/rustc_coverage.sh) and has each test process write a raw profile into
``DIR/profraw``; ``report`` merges them with ``llvm-profdata`` into ``DIR/merged.profdata``,
asks ``llvm-cov export`` for the per-file summary over the test binaries the same ``cargo
test`` command built (listed with ``--no-run``, which builds nothing more), and prints
rust/core's files (lowest first; the test modules left out) and their total. The tools come
with rustup's ``llvm-tools-preview`` component; ``tools`` exits 1 with the reason when it is
missing. A report, not a gate: ``report`` exits 0 unless it cannot produce the figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "rust" / "core" / "src"
TEST_FILES = frozenset({"tests.rs", "testutil.rs"})


def find_tools() -> tuple[Path, Path]:
    """``(llvm-profdata, llvm-cov)`` of the active toolchain; RuntimeError naming what is
    missing."""
    try:
        sysroot = subprocess.run(
            ["rustc", "--print", "sysroot"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"rustc --print sysroot failed: {exc}") from exc
    found: list[Path] = []
    for name in ("llvm-profdata", "llvm-cov"):
        hits = sorted(Path(sysroot, "lib", "rustlib").glob(f"*/bin/{name}"))
        if not hits:
            raise RuntimeError(
                f"{name} is not in {sysroot}/lib/rustlib/*/bin "
                "(rustup component add llvm-tools-preview)"
            )
        found.append(hits[0])
    return found[0], found[1]


def test_binaries(cargo_test: list[str]) -> list[Path]:
    """The test executables ``cargo_test`` built (cargo lists them; they are up to date)."""
    out = subprocess.run(
        [*cargo_test, "--no-run", "--message-format=json", "--quiet"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    binaries: list[Path] = []
    for line in out.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        executable = message.get("executable") if isinstance(message, dict) else None
        if executable and message.get("profile", {}).get("test"):
            binaries.append(Path(executable))
    return binaries


def report(cov_dir: Path, cargo_test: list[str]) -> int:
    profdata_tool, cov_tool = find_tools()
    raws = sorted((cov_dir / "profraw").glob("*.profraw"))
    if not raws:
        print(f"rust coverage: no raw profile in {cov_dir / 'profraw'}", file=sys.stderr)
        return 1
    merged = cov_dir / "merged.profdata"
    subprocess.run(
        [str(profdata_tool), "merge", "-sparse", "-o", str(merged), *map(str, raws)], check=True
    )
    binaries = test_binaries(cargo_test)
    if not binaries:
        print("rust coverage: cargo listed no test binary", file=sys.stderr)
        return 1
    objects = [arg for b in binaries for arg in ("-object", str(b))]
    exported = subprocess.run(
        [
            str(cov_tool),
            "export",
            "-summary-only",
            f"-instr-profile={merged}",
            *objects[1:],
            # Dependencies and the standard library; rust/core is picked out below (LLVM's
            # regexes have no negative lookahead).
            r"-ignore-filename-regex=(/\.cargo/|/rustc/|/rust/python/)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = {
        Path(f["filename"]).resolve(): f["summary"]["lines"]
        for f in json.loads(exported)["data"][0]["files"]
    }
    rows = {
        str(path.relative_to(ROOT)): lines
        for path, lines in files.items()
        # Test modules (tests.rs, testutil.rs) are not the code under test.
        if path.is_relative_to(CORE) and path.name not in TEST_FILES
    }
    if not rows:
        print("rust coverage: no rust/core file in the profile", file=sys.stderr)
        return 1
    width = max(len(name) for name in rows)
    for name, lines in sorted(rows.items(), key=lambda kv: kv[1]["percent"]):
        share = f"({lines['covered']}/{lines['count']} lines)"
        print(f"{name:<{width}}  {lines['percent']:6.2f}%  {share}")
    covered = sum(lines["covered"] for lines in rows.values())
    count = sum(lines["count"] for lines in rows.values())
    total = 100.0 * covered / count
    print(f"{'rust/core TOTAL':<{width}}  {total:6.2f}%  ({covered}/{count} lines)")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["tools"]:
        try:
            profdata, _ = find_tools()
        except RuntimeError as exc:
            print(exc)
            return 1
        print(profdata.parent)
        return 0
    if argv[:1] == ["report"] and len(argv) > 3 and argv[2:4] == ["cargo", "test"]:
        return report(Path(argv[1]).resolve(), argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
