"""The loader that tests/integration/test_resume.py kills and resumes: loads ``--rows`` rows
into ``--table`` with a checkpoint, printing ``progress <completed> <elapsed>`` lines.

Each row is ``UPDATE t SET v = ?, runs = runs + [1] WHERE k = ?``: the list append is not
idempotent, so ``len(runs)`` says how many times the statement was applied.
"""

from __future__ import annotations

import argparse
import sys

from cassandra.cluster import Cluster

import rxcql

WINDOW_CONCURRENCY = 32
BATCH_SIZE = 32


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keyspace", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    cluster = Cluster([(args.host, args.port)], protocol_version=5)
    session = cluster.connect(args.keyspace)
    update = session.prepare(f"UPDATE {args.table} SET v = ?, runs = runs + [1] WHERE k = ?")

    def report(progress: rxcql.Progress) -> None:
        print(f"progress {progress.completed} {progress.elapsed:.3f}", flush=True)

    observable = rxcql.execute(
        session,
        ((update, (f"value {k}", k)) for k in range(args.rows)),
        concurrency=WINDOW_CONCURRENCY,
        batch="replica",
        batch_size=BATCH_SIZE,
        checkpoint=args.checkpoint,
        checkpoint_interval=args.interval,
        resume=args.resume,
        progress=report,
        progress_interval=args.interval,
    )
    failed = sum(1 for result in rxcql.iterate(observable) if not result.success)
    print(f"done failed={failed}", flush=True)
    cluster.shutdown()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
