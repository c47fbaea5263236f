"""Run a command with ``DKDATA_PG_DSN`` and ``DKDATA_ES_URL`` naming the tests' own servers.

    python scripts/with_services.py cargo test --workspace

The Rust store tests need a live PostgreSQL and a live OpenSearch node, and ``cargo test``
starts neither: this starts the same throwaway servers the Python suite uses
(tests/services/postgres.py, tests/services/opensearch.py), unless the variable already names
one, runs the command with them in its environment, and stops them after. A server that cannot
start is an error here, so those tests never pass unrun. (The S3 Rust tests start SeaweedFS
themselves.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.services import ServiceUnavailable, opensearch, postgres


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    env = dict(os.environ)
    with ExitStack() as started:
        try:
            if not env.get(postgres.ENV_DSN):
                server = postgres.start_cluster()
                started.callback(server.stop)
                env[postgres.ENV_DSN] = server.dsn
            if not env.get(opensearch.ENV_URL):
                node = opensearch.start_node()
                started.callback(node.stop)
                env[opensearch.ENV_URL] = node.url
        except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
            print(f"with_services: cannot start a test server: {exc}", file=sys.stderr)
            return 1
        return subprocess.call(argv, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
