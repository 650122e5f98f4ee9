"""The knobs of a run, validated once and then immutable, and the checks of the other arguments.

Every entry point builds its :class:`Options` the same way, from the public keywords
(:class:`RunKeywords`), so a knob is spelled, typed, defaulted and validated in one place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from cassandra.cluster import EXEC_PROFILE_DEFAULT
from reactivex import abc

from ._adaptive import AdaptiveConcurrency, Concurrency, as_adaptive
from ._batching import DEFAULT_BATCH_BYTES, DEFAULT_BATCH_SIZE, BatchMode, check_batch_knobs
from ._controls import ErrorBudget, ProgressCallback
from ._retry import Retry, as_retry


class RunKeywords(TypedDict, total=False):
    """The keywords :func:`rxcql.execute` and :func:`rxcql.operators.execute` take for a run
    (their meaning is documented on :func:`rxcql.execute`)."""

    concurrency: Concurrency
    raise_on_first_error: bool
    ordered: bool
    execution_profile: Any
    window: int | None
    scheduler: abc.SchedulerBase | None
    max_rate: float | None
    max_errors: int | float | None
    progress: ProgressCallback | None
    progress_interval: float
    batch: BatchMode | None
    batch_size: int
    batch_bytes: int
    retry: Retry | int | None
    checkpoint: str | os.PathLike[str] | None
    resume: bool
    checkpoint_interval: float
    run_id: str | None
    failed_log: str | os.PathLike[str] | None


class Extensions(TypedDict, total=False):
    """rxcql's keyword-only extensions of the drop-in calls (``execute_concurrent`` & co.);
    their defaults keep the driver's behaviour."""

    batch: BatchMode | None
    batch_size: int
    batch_bytes: int
    retry: Retry | int | None
    checkpoint: str | os.PathLike[str] | None
    resume: bool
    checkpoint_interval: float
    run_id: str | None
    failed_log: str | os.PathLike[str] | None


@dataclass(frozen=True, slots=True)
class Options:
    """The validated knobs of one ``execute`` call (immutable: a cold observable is reusable).

    Raises:
        TypeError, ValueError: a knob of the wrong type or out of range, naming it.
    """

    concurrency: int = 100
    raise_on_first_error: bool = True
    ordered: bool = True
    execution_profile: Any = EXEC_PROFILE_DEFAULT
    #: The most statements issued but not yet delivered (``2 * concurrency`` when built with
    #: ``window=None``).
    window: int = 200
    scheduler: abc.SchedulerBase | None = None
    max_rate: float | None = None
    max_errors: int | float | None = None
    progress: ProgressCallback | None = None
    progress_interval: float = 0.5
    #: Grouped batching of writes (see :mod:`rxcql._batching`); None: one request per statement.
    batch: BatchMode | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_bytes: int = DEFAULT_BATCH_BYTES
    #: Retries with backoff (see :mod:`rxcql._retry`); an int is ``Retry(attempts=n)``.
    retry: Retry | None = None
    #: ``concurrency="auto"``: the bounds of the adaptive limit (see :mod:`rxcql._adaptive`);
    #: ``concurrency`` is then its ``max`` (what sizes the window). None: a fixed concurrency.
    adaptive: AdaptiveConcurrency | None = None
    #: Long runs (see :mod:`rxcql._longrun`): the checkpoint file, whether to resume from it,
    #: how often to write it, the run's id, and the log of failed statements.
    checkpoint: str | os.PathLike[str] | None = None
    resume: bool = False
    checkpoint_interval: float = 1.0
    run_id: str | None = None
    failed_log: str | os.PathLike[str] | None = None
    #: Internal (the process pool's workers): the client timestamp of the statement at each
    #: run index, instead of one the driver takes at issue time (a request of several statements
    #: takes its latest one's). None: the driver's. Not a public keyword.
    timestamps: Callable[[int], int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry", as_retry(self.retry))
        check_batch_knobs(self.batch, self.batch_size, self.batch_bytes)  # the window uses them
        concurrency = self.concurrency
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise TypeError(
                "concurrency must be an int, 'auto' or an AdaptiveConcurrency, "
                f"got {type(concurrency).__name__}"
            )
        if concurrency <= 0:
            raise ValueError(f"concurrency must be greater than 0, got {concurrency}")
        adaptive = self.adaptive
        if adaptive is not None and not isinstance(adaptive, AdaptiveConcurrency):
            raise TypeError(f"adaptive must be an AdaptiveConcurrency, got {adaptive!r:.100}")
        window = self.window
        if isinstance(window, bool) or not isinstance(window, int):
            raise TypeError(f"window must be an int or None, got {type(window).__name__}")
        least = adaptive.min if adaptive is not None else concurrency
        if window < least:
            what = "the adaptive concurrency's min" if adaptive is not None else "concurrency"
            raise ValueError(f"window ({window}) must be at least {what} ({least})")
        for name in ("checkpoint", "failed_log"):
            path = getattr(self, name)
            if path is not None and not isinstance(path, str | os.PathLike):
                raise TypeError(f"{name} must be a path (str or os.PathLike) or None")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True needs checkpoint= (the file to resume from)")
        if self.run_id is not None and not isinstance(self.run_id, str):
            raise TypeError(f"run_id must be a str or None, got {type(self.run_id).__name__}")
        checkpoint_interval = self.checkpoint_interval
        if (
            isinstance(checkpoint_interval, bool)
            or not isinstance(checkpoint_interval, int | float)
            or not checkpoint_interval > 0
        ):
            raise ValueError(
                f"checkpoint_interval must be > 0 seconds, got {checkpoint_interval!r}"
            )
        for name in ("raise_on_first_error", "ordered", "resume"):
            flag = getattr(self, name)
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        scheduler = self.scheduler
        if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
            raise TypeError(f"scheduler must be a reactivex scheduler, got {scheduler!r:.100}")
        max_rate = self.max_rate
        if max_rate is not None:
            if isinstance(max_rate, bool) or not isinstance(max_rate, int | float):
                raise TypeError(f"max_rate must be a number, got {type(max_rate).__name__}")
            if not max_rate > 0:
                raise ValueError(f"max_rate must be > 0 statements per second, got {max_rate}")
        if self.timestamps is not None and not callable(self.timestamps):
            raise TypeError("timestamps must be a callable or None")
        if self.max_errors is not None:
            ErrorBudget(self.max_errors)  # validates
        if self.progress is not None and not callable(self.progress):
            raise TypeError(f"progress must be a callable, got {type(self.progress).__name__}")
        interval = self.progress_interval
        if not isinstance(interval, int | float) or interval < 0:
            raise ValueError(f"progress_interval must be >= 0 seconds, got {interval!r}")
        object.__setattr__(self, "progress_interval", float(interval))

    @classmethod
    def build(cls, **keywords: Unpack[RunKeywords]) -> Options:
        """The one way to make Options from the public keywords: the defaults of
        :func:`rxcql.execute`, ``window=None`` meaning ``2 * concurrency``, then validation."""
        unknown = sorted(set(keywords) - set(RunKeywords.__annotations__))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        concurrency: Any = keywords.get("concurrency", 100)
        adaptive = as_adaptive(concurrency)
        if adaptive is not None:
            # The limit moves up to adaptive.max: the static bounds (window, acknowledgements)
            # are sized for it; the run keeps the window at twice the current limit.
            concurrency = adaptive.max
        window = keywords.get("window")
        if window is None:
            # A concurrency of the wrong type is reported by the validation, not here. With
            # batching, concurrency counts requests of up to batch_size statements each, and the
            # window (in statements) leaves room to fill them.
            batch_size = keywords.get("batch_size", DEFAULT_BATCH_SIZE)
            per_request = (
                batch_size
                if keywords.get("batch") is not None and isinstance(batch_size, int)
                else 1
            )
            window = 2 * concurrency * per_request if isinstance(concurrency, int) else 0
        built = {**keywords, "concurrency": concurrency, "window": window, "adaptive": adaptive}
        return cls(**built)


def check_session(session: Any) -> None:
    """Raise TypeError unless ``session`` has a callable ``execute_async``."""
    if not callable(getattr(session, "execute_async", None)):
        raise TypeError(
            "session must be a cassandra.cluster.Session (with execute_async), "
            f"got {session!r:.100}"
        )


def session_closed(session: Any) -> bool:
    """Whether the session, or its cluster, says it is shut down. Only the bool ``True`` counts:
    a ``unittest.mock.Mock`` session answers every attribute with a truthy Mock, and users test
    their code with exactly such sessions."""
    if getattr(session, "is_shutdown", False) is True:
        return True
    cluster = getattr(session, "cluster", None)
    return getattr(cluster, "is_shutdown", False) is True


def check_iterable(statements_and_parameters: Any) -> None:
    """Raise TypeError unless the input is an iterable other than a str or bytes."""
    if isinstance(statements_and_parameters, str | bytes) or not isinstance(
        statements_and_parameters, Iterable
    ):
        raise TypeError(
            "statements_and_parameters must be an iterable of (statement, parameters) pairs, "
            f"got {type(statements_and_parameters).__name__}"
        )
