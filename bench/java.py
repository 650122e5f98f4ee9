"""The Java driver as the ceiling contender: its jars, and the single-file loader that runs on them.

``org.apache.cassandra:java-driver-core`` and its runtime dependencies come from Maven Central
through the project's one Maven fetcher (:mod:`rxcql_dev.maven`), into the same cache root as
Cassandra's jars (``~/.cache/rxcql/java-driver-<version>/lib``, the same completion marker). The
loader, ``bench/java/Loader.java``, runs with Java 17's source launcher (``java -cp 'lib/*'
Loader.java ...``): no build tool. It does a warm-up pass first (not timed) and prints one JSON
line with the rows, the wall seconds and the JVM's own CPU seconds of the timed pass.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rxcql_dev import maven
from rxcql_dev.jvm import Echo, ToolError, cache_root, default_echo, find_java17

__all__ = [
    "LOADER",
    "VERSION",
    "JavaRun",
    "LoaderError",
    "ensure_driver_jars",
    "run_loader",
]

VERSION = "4.19.0"
LOADER = Path(__file__).resolve().parent / "java" / "Loader.java"


class LoaderError(ToolError):
    """The Java driver's jars could not be fetched, or the loader failed."""


def _driver_classpath(version: str) -> maven.Fetch:
    return maven.runtime_classpath(
        "org.apache.cassandra",
        "java-driver-core",
        version,
        cache_root() / f"java-driver-{version}" / "lib",
    )


def ensure_driver_jars(version: str = VERSION, echo: Echo = default_echo) -> Path:
    """The directory of the Java driver's jars, fetched with Maven when not cached.

    Raises:
        LoaderError: Maven could not fetch them.
    """
    _, fetch = maven.ensure(
        {version: _driver_classpath(version)},
        lock_name=".java-driver-download.lock",
        error=LoaderError,
        nothing=f"java-driver-core {version} could not be fetched",
        echo=echo,
    )
    return fetch.directory


@dataclass(frozen=True)
class JavaRun:
    """What one timed pass of the loader reported.

    Attributes:
        rows: Rows written in the timed pass.
        wall: Its wall seconds.
        cpu: The JVM's process CPU seconds over the timed pass (every JVM thread).
        warmup_rows: Rows of the warm-up pass before it (not timed).
        warmup_wall: Wall seconds of the warm-up pass (JIT compilation, connection pools).
        errors: Requests that failed in the timed pass (the loader exits non-zero then).
    """

    rows: int
    wall: float
    cpu: float
    warmup_rows: int
    warmup_wall: float
    errors: int


def run_loader(
    lib: Path,
    *,
    host: str,
    port: int,
    keyspace: str,
    table: str,
    rows: int,
    in_flight: int,
    batch: int,
    warmup: int = 20_000,
    timeout: float = 1800.0,
) -> JavaRun:
    """Run the loader once in a fresh JVM: a warm-up pass, then ``rows`` timed rows.

    Args:
        lib: The driver's jars (:func:`ensure_driver_jars`).
        host: Contact point.
        port: Its CQL port.
        keyspace: Keyspace of ``table``.
        table: ``(k bigint PRIMARY KEY, v text)``.
        rows: Rows ``0 .. rows - 1`` of the timed pass, with ``v`` as in ``bench.node.value``.
        in_flight: Requests in flight (a batch is one request).
        batch: ``0`` or ``1``: one request per row; else UNLOGGED batches of consecutive rows.
        warmup: Rows of the untimed warm-up pass before it (keys ``rows .. rows + warmup - 1``,
            so that reading rows back after the run only sees the timed pass).
        timeout: Seconds before the loader is killed.

    Raises:
        LoaderError: The loader failed or printed no result line.
    """
    java = find_java17(LoaderError) / "bin" / "java"
    command = [
        str(java),
        "-Xms256m",
        "-Xmx1g",
        "-cp",
        f"{lib}{os.sep}*",
        str(LOADER),
        f"--host={host}",
        f"--port={port}",
        f"--keyspace={keyspace}",
        f"--table={table}",
        f"--rows={rows}",
        f"--in-flight={in_flight}",
        f"--batch={batch}",
        f"--warmup={warmup}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LoaderError(f"the Java loader did not finish within {timeout:.0f} s") from exc
    result: dict[str, Any] | None = None
    for line in done.stdout.splitlines():
        if line.startswith("{") and '"rows"' in line:
            result = json.loads(line)
    if done.returncode != 0 or result is None:
        detail = (done.stderr.strip() or done.stdout.strip() or "(no output)").splitlines()
        raise LoaderError(
            f"the Java loader exited with status {done.returncode}: " + " | ".join(detail[-5:])
        )
    return JavaRun(
        rows=int(result["rows"]),
        wall=float(result["wall"]),
        cpu=float(result["cpu"]),
        warmup_rows=int(result["warmup_rows"]),
        warmup_wall=float(result["warmup_wall"]),
        errors=int(result["errors"]),
    )
