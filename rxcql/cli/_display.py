"""The progress display: a rich live line on a terminal, a plain line every 10 s elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

import rxcql

PLAIN_INTERVAL = 10.0


def console() -> Console:
    """The console of every message: stderr (stdout may be the data)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class Display:
    """What a run shows while it runs.

    ``rows`` (a callable) gives the rows done so far; ``fraction`` (optional) the share of the
    input read, for the bar and the ETA. The rxcql ``progress=`` callback (:meth:`update`)
    brings failures, retries and the current concurrency.
    """

    def __init__(
        self,
        title: str,
        rows: Callable[[], int],
        fraction: Callable[[], float | None] | None = None,
        failures: Callable[[], int] | None = None,
        quiet: bool = False,
        out: Console | None = None,
    ) -> None:
        self.console = out or console()
        self._title = title
        self._rows = rows
        self._fraction = fraction or (lambda: None)
        self._failures = failures or (lambda: 0)
        self._progress: rxcql.Progress | None = None
        self._started = time.monotonic()
        self._quiet = quiet
        self._live: Live | None = None
        self._plain_at = self._started + PLAIN_INTERVAL
        self._lock = threading.Lock()

    # -- the rxcql progress callback (any thread) ----------------------------------------------

    def update(self, progress: rxcql.Progress) -> None:
        self._progress = progress
        self.tick()

    def tick(self) -> None:
        """Print the plain progress line when it is due (without a terminal); a run without
        progress reports (``--processes``) calls this as its results come."""
        if self._live is None and not self._quiet:
            now = time.monotonic()
            if now >= self._plain_at:
                self._plain_at = now + PLAIN_INTERVAL
                with self._lock:
                    self.console.print(self.line(), markup=False)

    # -- rendering -----------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def line(self) -> str:
        rows, elapsed = self._rows(), self.elapsed()
        parts = [f"{self._title}: {rows:,} rows", f"{rows / elapsed if elapsed else 0:,.0f} rows/s"]
        fraction = self._fraction()
        if fraction:
            parts.append(f"{fraction:.0%}")
            if 0 < fraction < 1:
                parts.append(f"ETA {duration(elapsed * (1 - fraction) / fraction)}")
        parts.append(f"failed {self._failures():,}")
        progress = self._progress
        if progress is not None:
            parts.append(f"retries {progress.retries:,}")
            parts.append(f"concurrency {progress.concurrency}")
        return ", ".join(parts)

    def __rich__(self) -> RenderableType:
        rows, elapsed = self._rows(), self.elapsed()
        fraction = self._fraction()
        parts = [f"{rows:,} rows", f"{rows / elapsed if elapsed else 0:,.0f} rows/s"]
        if fraction:
            remaining = elapsed * (1 - fraction) / fraction if fraction < 1 else 0.0
            parts.append(f"ETA {duration(remaining)}")
        else:
            parts.append(duration(elapsed))
        failed = self._failures()
        progress = self._progress
        if progress is not None:
            parts.append(f"retries {progress.retries:,}")
            parts.append(f"concurrency {progress.concurrency}")
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(self._title, style="bold")
        line.append("  " + "  ".join(parts))
        line.append(f"  failed {failed:,}", style="red" if failed else "")
        grid = Table.grid(padding=(0, 1))
        if fraction is not None:
            grid.add_row(
                ProgressBar(total=1.0, completed=min(fraction, 1.0), width=20),
                Text(f"{fraction:4.0%}"),
                line,
            )
        else:
            grid.add_row(line)
        return grid

    # -- lifetime ------------------------------------------------------------------------------

    def __enter__(self) -> Display:
        self._started = time.monotonic()
        self._plain_at = self._started + PLAIN_INTERVAL
        if not self._quiet and self.console.is_terminal:
            self._live = Live(self, console=self.console, refresh_per_second=4, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def message(self, text: str, style: str | None = None) -> None:
        """A line on stderr, above the live display."""
        with self._lock:
            self.console.print(text, style=style, markup=False, highlight=False)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
