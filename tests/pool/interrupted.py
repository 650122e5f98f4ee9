"""Run by test_pool_fake: a pool run that a SIGINT (Ctrl-C) interrupts."""

from __future__ import annotations

import faulthandler
import signal
import sys

import rxcql
from tests.pool.fakes import connect_slow

if __name__ == "__main__":
    # If this process ever hangs, the test asks it where (SIGUSR1: all threads' stacks).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Ctrl-C raises KeyboardInterrupt here even when this process was started with SIGINT
    # ignored (Python then installs no handler: a test run launched in the background of a
    # non-interactive shell inherits that, and the SIGINT below did nothing).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with rxcql.ProcessPool(connect_slow, processes=2, chunk_size=50) as pool:
        print(" ".join(map(str, pool.pids)), flush=True)
        items = (("INSERT INTO t (k, v) VALUES (?, ?)", (i, "ok")) for i in range(10**7))
        for n, _ in enumerate(rxcql.iterate(pool.execute(items))):
            if n == 100:
                print("running", flush=True)
    sys.exit(3)  # never reached: the run is interrupted
