"""S3 benchmark workload for one side, run as a script by ``s3_compare.py``.

Sides: ``ours-sync`` / ``ours-async`` (this package), ``theirs-sync`` / ``theirs-async`` (the
pure-Python dataknobs-data 0.11.0, boto3 / aioboto3) and ``aioboto3`` (raw client, 64 requests
in flight: PUT then GET of the same bodies). Prints one JSON object per op:
``{"side", "op", "n", "seconds"}`` (or ``"error"``).

Every side writes its own N records (``create_batch``). The reads (``read_batch``, ``search``,
``stream_read``, ``count``) run over one shared set of N objects in 0.11.0's layout under
``legacy/``, which the ``aioboto3`` side writes and both packages read, so reads compare on the
same objects. 0.11.0's creates and reads by id are slow (13 records/s async here), so
``--write-n`` / ``--read-n`` may cap those batches; the rate (records/s) is what the driver
compares.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

CITIES = ("Amsterdam", "Berlin", "Cairo", "Denver", "Edinburgh", "Florence", "Geneva", "Havana")
LEGACY = "legacy"


def data(i: int) -> dict[str, Any]:
    return {"n": i, "name": f"user{i}", "city": CITIES[i % len(CITIES)], "score": i % 100}


def legacy_body(i: int) -> bytes:
    """An object as 0.11.0 writes it: ``Record.to_dict(include_metadata=True, flatten=False)``."""
    rid = f"r{i:06d}"
    fields = {
        k: {"name": k, "value": v, "type": "string" if isinstance(v, str) else "integer"}
        for k, v in data(i).items()
    }
    for f in fields.values():
        f["metadata"] = {}
    return json.dumps({"fields": fields, "id": rid, "metadata": {"id": rid}}).encode()


def emit(side: str, op: str, n: int, seconds: float | None, error: str | None = None) -> None:
    out: dict[str, Any] = {"side": side, "op": op, "n": n, "seconds": seconds}
    if error:
        out["error"] = error
    print(json.dumps(out), flush=True)


async def timed(side: str, op: str, n: int, fn: Callable[[], Awaitable[Any]]) -> None:
    started = time.perf_counter()
    try:
        await fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit(side, op, n, None, f"{type(exc).__name__}: {exc}"[:200])
        return
    emit(side, op, n, time.perf_counter() - started)


def config(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {
        "bucket": args.bucket,
        "prefix": prefix,
        "endpoint_url": args.endpoint,
        "aws_access_key_id": args.access_key,
        "aws_secret_access_key": args.secret_key,
        "region_name": "us-east-1",
    }


async def raw_side(args: argparse.Namespace) -> None:
    import aioboto3  # type: ignore[import-not-found]
    from botocore.config import Config  # type: ignore[import-not-found]

    n, width = args.n, 64
    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=args.endpoint,
        aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret_key,
        region_name="us-east-1",
        config=Config(max_pool_connections=width),
    ) as s3:
        gate = asyncio.Semaphore(width)
        bodies = [legacy_body(i) for i in range(n)]

        async def put(i: int) -> None:
            async with gate:
                await s3.put_object(
                    Bucket=args.bucket, Key=f"{LEGACY}/r{i:06d}.json", Body=bodies[i]
                )

        async def get(i: int) -> None:
            async with gate:
                obj = await s3.get_object(Bucket=args.bucket, Key=f"{LEGACY}/r{i:06d}.json")
                json.loads(await obj["Body"].read())

        await timed("aioboto3", "put", n, lambda: asyncio.gather(*(put(i) for i in range(n))))
        await timed("aioboto3", "get", n, lambda: asyncio.gather(*(get(i) for i in range(n))))


async def package_side(args: argparse.Namespace) -> None:
    from dataknobs_data import AsyncDatabase, Query, Record, SyncDatabase

    side = args.side
    is_async = side.endswith("async")
    theirs = side.startswith("theirs")
    n = args.n
    write_n = min(args.write_n or n, n)
    read_n = min(args.read_n or n, n)
    records = [Record(data(i), id=f"w{i:06d}") for i in range(write_n)]
    # 0.11.0's async backend joins "{prefix}/{id}.json"; its sync one and ours take "prefix/".
    legacy_prefix = LEGACY if (theirs and is_async) else LEGACY + "/"
    write_prefix = f"{side}" if (theirs and is_async) else f"{side}/"
    ids = [f"r{i:06d}" for i in range(read_n)]
    query = Query().filter("city", "=", "Berlin").filter("score", ">=", 50)

    if is_async:
        wdb = await AsyncDatabase.from_backend("s3", config(args, write_prefix))
        rdb = await AsyncDatabase.from_backend("s3", config(args, legacy_prefix))

        async def stream() -> int:
            return sum([1 async for _ in rdb.stream_read()])

        await timed(side, "create_batch", write_n, lambda: wdb.create_batch(records))
        await timed(side, "read_batch", read_n, lambda: rdb.read_batch(ids))
        await timed(side, "search", n, lambda: rdb.search(query))
        await timed(side, "stream_read", n, stream)
        await timed(side, "count", n, lambda: rdb.count())
        await wdb.close()
        await rdb.close()
        return

    sdb = SyncDatabase.from_backend("s3", config(args, write_prefix))
    srdb = SyncDatabase.from_backend("s3", config(args, legacy_prefix))

    def run(fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            return fn()

        return call

    await timed(side, "create_batch", write_n, run(lambda: sdb.create_batch(records)))
    await timed(side, "read_batch", read_n, run(lambda: srdb.read_batch(ids)))
    await timed(side, "search", n, run(lambda: srdb.search(query)))
    await timed(side, "stream_read", n, run(lambda: sum(1 for _ in srdb.stream_read())))
    await timed(side, "count", n, run(lambda: srdb.count()))
    sdb.close()
    srdb.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--side", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--write-n", type=int, default=0)
    p.add_argument("--read-n", type=int, default=0)
    args = p.parse_args()
    asyncio.run(raw_side(args) if args.side == "aioboto3" else package_side(args))


if __name__ == "__main__":
    main()
