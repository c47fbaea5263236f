"""The cost of the per-operation instrumentation with the ``otel`` extra absent.

    python benches/observability_overhead.py [--calls 20000] [--rounds 15] [--json FILE]

Runs with ``opentelemetry`` made unimportable (as without the extra; ``--otel-api`` leaves the
API importable with no tracer provider set), on the memory backend,
whose operations are the shortest, so the wrappers' share is the largest it can be. Each op is
timed through the instrumented method and through the function it wraps (``__wrapped__``),
alternating within each round, in CPU time of the calling thread; the median per-call time
of the rounds is reported for both,
and the rounds' spread of the plain calls as the noise to compare the overhead with.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class _BlockOpenTelemetry:
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"{name} is blocked: measuring without the otel extra")


# ``--otel-api``: leave the API importable (as when another package pulls it in) with no
# tracer provider set, the case where spans would be made only to be dropped.
OTEL_API = "--otel-api" in sys.argv
if not OTEL_API:
    sys.meta_path.insert(0, _BlockOpenTelemetry())

from dataknobs_data import Query, Record, SyncDatabase, observability  # noqa: E402


def _ops(db: SyncDatabase) -> dict[str, tuple[str, tuple[Any, ...]]]:
    ten = [Record({"id": f"b{i}", "n": i}) for i in range(10)]
    return {
        "read": ("read", ("r5",)),
        "exists": ("exists", ("r5",)),
        "count": ("count", (Query().filter("n", "<", 10),)),
        "search (limit 10)": ("search", (Query().filter("n", "<", 50).limit(10),)),
        "upsert_batch (10 records)": ("upsert_batch", (ten,)),
    }


def _time(fn: Callable[[], Any], calls: int) -> float:
    # The calling thread's CPU time, not the wall clock: on a shared machine the wall clock
    # also counts the time the thread waited for a core. The memory store runs inline on this
    # thread, so its CPU time is all the work.
    start = time.thread_time_ns()
    for _ in range(calls):
        fn()
    return (time.thread_time_ns() - start) / calls / 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--otel-api",
        action="store_true",
        help="with opentelemetry-api importable and no tracer provider set",
    )
    args = parser.parse_args(argv)
    assert observability.tracing_enabled() == args.otel_api

    db = SyncDatabase.from_backend("memory")
    db.create_batch([Record({"id": f"r{i}", "n": i}) for i in range(1000)])
    results: list[dict[str, Any]] = []
    spreads: list[float] = []
    for label, (method, call_args) in _ops(db).items():
        bound = getattr(db, method)
        plain_fn = getattr(type(db), method).__wrapped__

        def instrumented(bound: Any = bound, a: tuple[Any, ...] = call_args) -> Any:
            return bound(*a)

        def plain(fn: Any = plain_fn, a: tuple[Any, ...] = call_args) -> Any:
            return fn(db, *a)

        _time(plain, args.calls // 10)  # warm up
        _time(instrumented, args.calls // 10)
        plain_runs, wrapped_runs = [], []
        for _ in range(args.rounds):
            plain_runs.append(_time(plain, args.calls))
            wrapped_runs.append(_time(instrumented, args.calls))
        spreads.append((max(plain_runs) / min(plain_runs) - 1) * 100)
        row = {
            "op": label,
            "plain_us": statistics.median(plain_runs),
            "instrumented_us": statistics.median(wrapped_runs),
        }
        results.append(row)
        overhead = row["instrumented_us"] - row["plain_us"]
        print(
            f"{label:<28} plain {row['plain_us']:8.3f} us  instrumented "
            f"{row['instrumented_us']:8.3f} us  overhead {overhead:+.3f} us "
            f"({overhead / row['plain_us'] * 100:+.1f}%)"
        )
    noise = statistics.median(spreads)
    print(f"spread of the plain rounds (median over ops): {noise:.1f}%")
    if args.json:
        meta = {
            "command": "python benches/observability_overhead.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "calls": args.calls,
            "rounds": args.rounds,
            "noise_percent": noise,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
