"""The one Maven fetcher: jars from Maven Central into the cache directory, once.

A :class:`Fetch` is one Maven goal that writes jars into one cache directory: the Cassandra
server's runtime classpath (``dependency:copy-dependencies`` of a generated pom) or Simulacron's
runnable jar (``dependency:copy``). The goal writes into ``<directory>.partial``, which is renamed
into place, and a marker file written last makes the directory count as cached: a download cut
short leaves no marker and is redone. :func:`ensure` takes the first cached candidate, else
fetches them in order until one resolves, under a lock file so that two processes never fetch at
once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .jvm import Echo, ToolError, cache_root, default_echo, java17_or_none, locked

__all__ = ["COMPLETE_MARKER", "Fetch", "ensure", "fetch", "runtime_classpath"]

COMPLETE_MARKER = ".complete"

K = TypeVar("K")


@dataclass(frozen=True)
class Fetch:
    """One Maven goal that puts jars into one cache directory.

    Attributes:
        label: What it fetches, for messages (``cassandra-all 5.0.8 and its runtime
            dependencies``, ``group:artifact:version``).
        directory: Where the jars go.
        arguments: The goal and its options; ``-DoutputDirectory`` is added.
        pom: A pom.xml to write beside ``directory`` and run the goal on, or ``None`` to run it
            in an empty directory (a goal that needs no project).
    """

    label: str
    directory: Path
    arguments: tuple[str, ...]
    pom: str | None = None

    def jars(self) -> list[Path]:
        """The jars in :attr:`directory`, sorted."""
        return sorted(self.directory.glob("*.jar"))

    def cached(self) -> bool:
        """Whether a completed fetch left its jars in :attr:`directory`."""
        return (self.directory / COMPLETE_MARKER).is_file() and bool(self.jars())


_CLASSPATH_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>rxcql.local</groupId>
  <artifactId>{artifact}-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def runtime_classpath(group: str, artifact: str, version: str, directory: Path) -> Fetch:
    """The Fetch of an artifact with its runtime dependencies into ``directory`` (a throwaway
    pom that depends on it, and ``dependency:copy-dependencies``)."""
    return Fetch(
        label=f"{artifact} {version} and its runtime dependencies",
        directory=directory,
        arguments=("dependency:copy-dependencies", "-DincludeScope=runtime"),
        pom=_CLASSPATH_POM.format(group=group, artifact=artifact, version=version),
    )


def fetch(item: Fetch, error: type[ToolError] = ToolError) -> list[Path]:
    """Run the goal of ``item`` now; returns the jars.

    Raises:
        ToolError: (as ``error``) no ``mvn`` on PATH, or the goal failed or wrote no jar; the
            message carries Maven's first ``[ERROR]`` line.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise error("Maven (mvn) is not on PATH; it is needed once to fetch the jars")
    target = item.directory
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    options = ["-B", "-q", "-Dstyle.color=never"]
    # A goal that needs no project runs where no pom.xml can be picked up by accident.
    cwd = partial
    if item.pom is not None:
        cwd = target.parent
        pom = cwd / "pom.xml"
        pom.write_text(item.pom, encoding="utf-8")
        options += ["-U", "-f", str(pom)]
    command = [mvn, *options, *item.arguments, f"-DoutputDirectory={partial}"]
    env = dict(os.environ)
    java17 = java17_or_none()
    if java17 is not None:
        env.setdefault("JAVA_HOME", str(java17))
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(partial.glob("*.jar")):
        shutil.rmtree(partial, ignore_errors=True)
        if item.pom is not None and not target.exists():
            shutil.rmtree(target.parent, ignore_errors=True)
        # Maven emits colour resets even in batch mode.
        text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
        output = text.strip().splitlines()
        errors = [line for line in output if line.startswith("[ERROR]") and len(line) > 12]
        detail = (errors or output or ["(no output)"])[0].removeprefix("[ERROR] ")
        raise error(f"mvn could not fetch {item.label}: {detail}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    jars = item.jars()
    # The marker is written last: a download cut short leaves no marker and is redone.
    (target / COMPLETE_MARKER).write_text(f"{len(jars)} jars\n", encoding="utf-8")
    return jars


def ensure(
    candidates: Mapping[K, Fetch],
    *,
    lock_name: str,
    error: type[ToolError] = ToolError,
    nothing: str = "nothing could be fetched",
    echo: Echo = default_echo,
) -> tuple[K, Fetch]:
    """Return the first cached candidate, else fetch them in order until one resolves.

    Args:
        candidates: What the caller calls each (a version, coordinates) -> its fetch, in order
            of preference.
        lock_name: Lock file in the cache root held meanwhile.
        error: The exception type to raise.
        nothing: Start of the message when no candidate resolves.
        echo: Receives progress messages.

    Returns:
        The key and the fetch of the candidate used.

    Raises:
        ToolError: (as ``error``) no candidate resolved; the message lists each failure.
    """
    with locked(cache_root() / lock_name):
        for key, item in candidates.items():
            if item.cached():
                return key, item
        failures: list[str] = []
        for key, item in candidates.items():
            echo(f"fetching {item.label} with Maven ...")
            began = time.monotonic()
            try:
                jars = fetch(item, error)
            except ToolError as failure:
                echo(f"  {failure}")
                failures.append(str(failure))
                continue
            seconds = time.monotonic() - began
            echo(f"  {len(jars)} jars in {item.directory} ({seconds:.1f} s)")
            return key, item
    raise error(f"{nothing}:\n" + "\n".join(failures))
