"""Elasticsearch/OpenSearch benchmark workload of one side, run by ``search_compare.py``.

Sides:

- ``ours``: this package (``backend="elasticsearch"``, its defaults: ``refresh`` on, as 0.11.0).
- ``theirs``: the pure-Python dataknobs-data 0.11.0 (``/tmp/ref011/bin/python``). Its
  elasticsearch-py 8 client refuses OpenSearch, so this side patches exactly two things in
  ``elasticsearch._sync.client._base`` before the backend is imported, and nothing else:
  ``_COMPAT_MIMETYPE_SUB`` so ``Accept`` / ``Content-Type`` stay ``application/json`` /
  ``application/x-ndjson`` (OpenSearch answers 406 to ``application/vnd.elasticsearch+json;
  compatible-with=8``), and ``BaseClient.__init__`` so the client starts as verified (OpenSearch
  sends no ``X-Elastic-Product: Elasticsearch`` header, and the client raises
  ``UnsupportedProductError`` on the first 2xx answer without it). 0.11.0's other requests go
  through ``requests`` with plain JSON and need no patch.
- ``raw``: a tuned client doing the same work by hand: aiohttp with orjson, NDJSON ``_bulk``
  bodies of the documents this package writes (same ``_source`` layout and ``dk_terms``, into an
  index with the same mapping, copied from ours), several requests in flight, one refresh at
  the end; reads by ``_mget``, ``_count``, and a point in time paged with ``search_after``.

Records are ``benches/workload.py``'s (``generate_rows``), its search (``city = X`` sorted by
``-age``, limit 100) and its count (``city = X``). Prints one JSON object per op:
``{"side", "op", "n", "times_ms", "median_ms", "error", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import struct
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import CITIES, READS, SEARCH_LIMIT, generate_rows

#: Records per create_batch call in the chunked op, as benches/workload.py loads data.
CREATE_CHUNK = 1_000


def emit(side: str, op: str, n: int, times: list[float], error: str | None, **extra: Any) -> None:
    out: dict[str, Any] = {"side": side, "op": op, "n": n, **extra}
    out["times_ms"] = [round(t * 1000.0, 3) for t in times]
    out["median_ms"] = round(statistics.median(times) * 1000.0, 3) if times and not error else None
    out["error"] = error
    print(json.dumps(out), flush=True)


def timed(
    side: str,
    op: str,
    n: int,
    fn: Callable[[], Any],
    check: Callable[[Any], str | None],
    repeat: int,
    **extra: Any,
) -> None:
    times: list[float] = []
    error = None
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            got = fn()
            times.append(time.perf_counter() - started)
            error = error or check(got)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        error = f"{type(exc).__name__}: {exc}"[:200]
    emit(side, op, n, times, error, **extra)


def expect(want: int) -> Callable[[Any], str | None]:
    return lambda got: None if got == want else f"wrong result: expected {want}, got {got}"


def patch_elasticsearch_for_opensearch() -> None:
    """The two patches named in the module docstring (theirs side only)."""
    from elasticsearch._sync.client import _base

    _base._COMPAT_MIMETYPE_SUB = r"application/\g<1>"
    init = _base.BaseClient.__init__

    def verified_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._verified_elasticsearch = True

    _base.BaseClient.__init__ = verified_init  # type: ignore[method-assign]


def package_side(args: argparse.Namespace) -> None:
    side = args.side
    if side == "theirs":
        patch_elasticsearch_for_opensearch()
    from dataknobs_data import Query, Record, SyncDatabase

    rows = generate_rows(args.n)
    city = CITIES[3]
    city_count = sum(1 for r in rows if r["city"] == city)
    host, port = args.url.rsplit("//", 1)[1].rsplit(":", 1)

    def open_db(index: str) -> Any:
        if side == "theirs":
            cfg: dict[str, Any] = {"host": host, "port": int(port), "index": index}
        else:
            cfg = {"hosts": [args.url], "index": index}
        return SyncDatabase.from_backend("elasticsearch", cfg)

    def records() -> list[Any]:
        return [Record(dict(r)) for r in rows]

    prefix = args.index_prefix
    db = open_db(f"{prefix}-chunked")
    recs = records()

    ids: list[str] = []

    def chunked_keep() -> int:
        done = 0
        for start in range(0, len(recs), CREATE_CHUNK):
            got = db.create_batch(recs[start : start + CREATE_CHUNK])
            ids.extend(got)
            done += len(got)
        return done

    timed(side, "create_batch_1000", args.n, chunked_keep, expect(args.n), 1)
    if "one" in args.ops:
        one = open_db(f"{prefix}-one")
        recs_one = records()
        timed(
            side,
            "create_batch_one",
            args.n,
            lambda: len(one.create_batch(recs_one)),
            expect(args.n),
            1,
        )
        one.close()
    import random

    rng = random.Random(1)
    read_ids = [ids[rng.randrange(len(ids))] for _ in range(min(READS, len(ids)))] if ids else []
    timed(
        side,
        "read_batch",
        len(read_ids),
        lambda: sum(1 for r in db.read_batch(read_ids) if r is not None),
        expect(len(read_ids)),
        args.repeat,
    )
    search_q = Query().filter("city", "=", city).sort_by("age", "desc").limit(SEARCH_LIMIT)

    def search() -> Any:
        found = db.search(search_q)
        ages = [r.get_value("age") for r in found]
        if ages != sorted(ages, reverse=True) or any(r.get_value("city") != city for r in found):
            return "unsorted or wrong city"
        return len(found)

    timed(side, "search", args.n, search, expect(min(SEARCH_LIMIT, city_count)), args.repeat)
    count_q = Query().filter("city", "=", city)
    timed(side, "count", args.n, lambda: int(db.count(count_q)), expect(city_count), args.repeat)
    timed(
        side,
        "stream_read",
        args.n,
        lambda: sum(1 for _ in db.stream_read()),
        expect(args.n),
        args.repeat,
    )
    db.close()


# --- the raw client ---------------------------------------------------------------------------


def sortable(f: float) -> str:
    """This package's number term (rust/core/src/search/dsl.rs ``sortable``): IEEE bits, sign
    flipped (every bit of a negative number flipped), as 16 hex digits."""
    bits = struct.unpack(">Q", struct.pack(">d", f + 0.0))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


def dk_terms(data: dict[str, Any]) -> list[str]:
    """The ``dk_terms`` of a flat record of str/number/bool/list values (dsl.rs ``terms``)."""
    out = []
    for k, v in data.items():
        if v is None:
            continue
        out.append(f"e\0{k}")
        if isinstance(v, str):
            out.append(f"s\0{k}\0{v}")
        elif isinstance(v, (bool, int, float)):
            out.append(f"n\0{k}\0{sortable(float(v))}")
    return sorted(set(out))


async def raw_side(args: argparse.Namespace) -> None:
    import aiohttp
    import orjson

    rows = generate_rows(args.n)
    city = CITIES[3]
    city_count = sum(1 for r in rows if r["city"] == city)
    # The records' own ids, as the package sides store them (``Record`` takes ``data["id"]``).
    ids = [str(r["id"]) for r in rows]
    url = args.url
    json_h = {"content-type": "application/json"}
    nd_h = {"content-type": "application/x-ndjson"}
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(url, connector=conn) as s:
        async with s.get(f"/{args.mapping_from}") as r:
            src = (await r.json())[args.mapping_from]
        body = {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": src["mappings"],
        }

        async def fresh(index: str) -> None:
            async with s.delete(f"/{index}") as r:
                await r.read()
            async with s.put(f"/{index}", data=orjson.dumps(body), headers=json_h) as r:
                if r.status != 200:
                    raise RuntimeError(await r.text())

        def doc_lines(i: int, now: str) -> bytes:
            data = rows[i]
            action = {"create": {"_id": ids[i]}}
            source = {
                "id": ids[i],
                "data": data,
                "metadata": {},
                "created_at": now,
                "updated_at": now,
                "dk_terms": dk_terms(data),
            }
            return orjson.dumps(action) + b"\n" + orjson.dumps(source) + b"\n"

        async def bulk(index: str, lo: int, hi: int, refresh: str) -> int:
            now = datetime.now(UTC).isoformat()
            payload = b"".join(doc_lines(i, now) for i in range(lo, hi))
            path = f"/{index}/_bulk?refresh={refresh}"
            async with s.post(path, data=payload, headers=nd_h) as r:
                answer = orjson.loads(await r.read())
            if r.status != 200 or answer.get("errors"):
                raise RuntimeError(f"bulk failed: {str(answer)[:200]}")
            return len(answer["items"])

        async def load(index: str, chunk: int, inflight: int) -> int:
            gate = asyncio.Semaphore(inflight)

            async def one(lo: int) -> int:
                async with gate:
                    return await bulk(index, lo, min(lo + chunk, len(rows)), "false")

            done = sum(await asyncio.gather(*(one(lo) for lo in range(0, len(rows), chunk))))
            async with s.post(f"/{index}/_refresh") as r:
                await r.read()
            return done

        async def atimed(
            op: str, n: int, fn: Callable[[], Any], want: int, repeat: int, **extra: Any
        ) -> None:
            times: list[float] = []
            error = None
            try:
                for _ in range(repeat):
                    started = time.perf_counter()
                    got = await fn()
                    times.append(time.perf_counter() - started)
                    if got != want and error is None:
                        error = f"wrong result: expected {want}, got {got}"
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                error = f"{type(exc).__name__}: {exc}"[:200]
            emit("raw", op, n, times, error, **extra)

        index = f"{args.index_prefix}-chunked"
        # What a user's 1,000-record calls do by hand: one _bulk each, refreshed, in turn.
        await fresh(index)

        async def chunked() -> int:
            done = 0
            for lo in range(0, len(rows), CREATE_CHUNK):
                done += await bulk(index, lo, min(lo + CREATE_CHUNK, len(rows)), "true")
            return done

        await atimed("create_batch_1000", args.n, chunked, args.n, 1)
        for chunk in args.raw_chunks:
            for inflight in args.raw_inflight:
                tuned = f"{args.index_prefix}-c{chunk}-w{inflight}"
                await fresh(tuned)
                await atimed(
                    "create_batch_one",
                    args.n,
                    lambda t=tuned, c=chunk, w=inflight: load(t, c, w),
                    args.n,
                    1,
                    chunk=chunk,
                    inflight=inflight,
                )
                async with s.delete(f"/{tuned}") as r:
                    await r.read()
        rng = __import__("random").Random(1)
        read_ids = [ids[rng.randrange(len(ids))] for _ in range(min(READS, len(ids)))]

        async def mget() -> int:
            payload = orjson.dumps({"ids": read_ids})
            async with s.post(f"/{index}/_mget", data=payload, headers=json_h) as r:
                docs = orjson.loads(await r.read())["docs"]
            return sum(1 for d in docs if d.get("found"))

        await atimed("read_batch", len(read_ids), mget, len(read_ids), args.repeat)
        term = {"term": {"dk_terms": f"s\0city\0{city}"}}

        async def pages(query: dict[str, Any], size: int) -> list[dict[str, Any]]:
            """Every hit of ``query`` in a point in time, in id order."""
            async with s.post(f"/{index}/_search/point_in_time?keep_alive=5m") as r:
                pit = (await r.json())["pit_id"]
            hits: list[dict[str, Any]] = []
            after = None
            while True:
                req: dict[str, Any] = {
                    "size": size,
                    "query": query,
                    "sort": [{"id": "asc"}],
                    "pit": {"id": pit, "keep_alive": "5m"},
                    "track_total_hits": False,
                }
                if after is not None:
                    req["search_after"] = after
                async with s.post("/_search", data=orjson.dumps(req), headers=json_h) as r:
                    got = orjson.loads(await r.read())["hits"]["hits"]
                hits.extend(got)
                if len(got) < size:
                    break
                after = got[-1]["sort"]
            async with s.delete(
                "/_search/point_in_time", data=orjson.dumps({"pit_id": [pit]}), headers=json_h
            ) as r:
                await r.read()
            return hits

        async def search() -> int:
            # The layout keeps data unindexed, so the sort is done here, as ours does.
            hits = await pages(term, 5000)
            top = sorted(hits, key=lambda h: h["_source"]["data"]["age"], reverse=True)
            return len(top[:SEARCH_LIMIT])

        await atimed("search", args.n, search, min(SEARCH_LIMIT, city_count), args.repeat)

        async def count() -> int:
            payload = orjson.dumps({"query": term})
            async with s.post(f"/{index}/_count", data=payload, headers=json_h) as r:
                return int((await r.json())["count"])

        await atimed("count", args.n, count, city_count, args.repeat)

        async def stream() -> int:
            return len(await pages({"match_all": {}}, 10_000))

        await atimed("stream_read", args.n, stream, args.n, args.repeat)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--side", required=True, choices=("ours", "theirs", "raw"))
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--index-prefix", default=f"bench-{uuid.uuid4().hex[:8]}")
    p.add_argument("--ops", default="one", help="'one': also time one create_batch of all N")
    p.add_argument("--mapping-from", help="raw: the index whose mapping the raw index copies")
    p.add_argument("--raw-chunks", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--raw-inflight", type=int, nargs="+", default=[4, 8])
    args = p.parse_args()
    if args.side == "raw":
        asyncio.run(raw_side(args))
    else:
        package_side(args)


if __name__ == "__main__":
    main()
