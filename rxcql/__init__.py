"""rxcql: run many CQL statements concurrently against Apache Cassandra, through reactivex.

The engine is :func:`execute` (an ``Observable[ExecutionResult]``); the drop-in replacements of
``cassandra.concurrent`` and the streaming consumers are thin consumers of it.
"""

from . import operators as operators
from . import testing as testing
from ._adaptive import AdaptiveConcurrency as AdaptiveConcurrency
from ._compat import execute_concurrent as execute_concurrent
from ._compat import execute_concurrent_async as execute_concurrent_async
from ._compat import execute_concurrent_with_args as execute_concurrent_with_args
from ._consumers import AsyncResultIterator as AsyncResultIterator
from ._consumers import ResultIterator as ResultIterator
from ._consumers import aiterate as aiterate
from ._consumers import collect as collect
from ._consumers import iterate as iterate
from ._controls import Progress as Progress
from ._controls import RunStatistics as RunStatistics
from ._engine import ExecuteObservable as ExecuteObservable
from ._engine import execute as execute
from ._errors import CheckpointError as CheckpointError
from ._errors import InvalidItemError as InvalidItemError
from ._errors import IOThreadBlockingError as IOThreadBlockingError
from ._errors import ObserverError as ObserverError
from ._errors import ReorderError as ReorderError
from ._errors import RxcqlError as RxcqlError
from ._errors import SessionClosedError as SessionClosedError
from ._errors import TooManyErrorsError as TooManyErrorsError
from ._future import from_response_future as from_response_future
from ._pool import PoolObservable as PoolObservable
from ._pool import ProcessPool as ProcessPool
from ._pool import RemoteError as RemoteError
from ._pool import WorkerError as WorkerError
from ._replay import replay_failed as replay_failed
from ._results import ExecutionResult as ExecutionResult
from ._retry import Retry as Retry
from ._rows import Page as Page
from ._rows import RowsObservable as RowsObservable
from ._rows import stream_rows as stream_rows
from ._rows import stream_rows_many as stream_rows_many
from ._scan import count_table as count_table
from ._scan import scan_table as scan_table

__version__ = "0.1.0.dev0"

__all__ = [
    "AdaptiveConcurrency",
    "AsyncResultIterator",
    "CheckpointError",
    "ExecuteObservable",
    "ExecutionResult",
    "IOThreadBlockingError",
    "InvalidItemError",
    "ObserverError",
    "Page",
    "PoolObservable",
    "ProcessPool",
    "Progress",
    "RemoteError",
    "ReorderError",
    "ResultIterator",
    "Retry",
    "RowsObservable",
    "RunStatistics",
    "RxcqlError",
    "SessionClosedError",
    "TooManyErrorsError",
    "WorkerError",
    "aiterate",
    "collect",
    "count_table",
    "execute",
    "execute_concurrent",
    "execute_concurrent_async",
    "execute_concurrent_with_args",
    "from_response_future",
    "iterate",
    "operators",
    "replay_failed",
    "scan_table",
    "stream_rows",
    "stream_rows_many",
    "testing",
]
