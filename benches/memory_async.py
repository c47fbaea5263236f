"""The memory backend's small calls through the async API, as issue 13's table measured them.

    python benches/memory_async.py [--n 100000] [--repeat 5]     # this package
    /tmp/ref011/bin/python benches/memory_async.py --n 100000   # dataknobs-data 0.11.0

Written against the public API only (like ``workload.py``), so it runs unchanged in both;
``benches/compare.py`` drives the sync API. Prints one line per op: the median of
``--repeat`` runs in ms. Ops: 1,000 reads by id awaited one after another, 1,000 reads with 16
in flight (``asyncio.gather`` in groups of 16), ``count()`` with no filter (x1,000), a count
with a filter, and ``stream_read`` of everything.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import CREATE_CHUNK, generate_rows

from dataknobs_data import AsyncDatabase, Query, Record


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rows = generate_rows(args.n)
    db = await AsyncDatabase.from_backend("memory")
    ids: list[str] = []
    for start in range(0, args.n, CREATE_CHUNK):
        chunk = [Record(dict(r)) for r in rows[start : start + CREATE_CHUNK]]
        ids.extend(await db.create_batch(chunk))
    rng = random.Random(1)
    picked = [ids[rng.randrange(args.n)] for _ in range(1000)]

    async def read_by_id() -> int:
        return sum([1 for i in picked if await db.read(i) is not None])

    async def read_16_in_flight() -> int:
        found = 0
        for s in range(0, len(picked), 16):
            got = await asyncio.gather(*(db.read(i) for i in picked[s : s + 16]))
            found += sum(1 for r in got if r is not None)
        return found

    async def count_x1000() -> int:
        return sum([await db.count() for _ in range(1000)]) // 1000

    async def count_filter() -> int:
        return int(await db.count(Query().filter("city", "=", "Denver")))

    async def stream_read() -> int:
        n = 0
        async for _ in db.stream_read():
            n += 1
        return n

    ops: dict[str, Callable[[], Awaitable[Any]]] = {
        "read by id x1000": read_by_id,
        "read by id x1000, 16 in flight": read_16_in_flight,
        "count() x1000": count_x1000,
        "count(city)": count_filter,
        "stream_read": stream_read,
    }
    for label, op in ops.items():
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = await op()
            times.append((time.perf_counter() - start) * 1000)
        print(f"{label:<32} {statistics.median(times):10.2f} ms  ({result})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
