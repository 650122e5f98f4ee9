"""Ray Data for Cassandra, through rxcql: ``pip install "rxcql[ray]"``.

- :class:`CassandraDatasink`: ``dataset.write_datasink(CassandraDatasink(connect, "INSERT ...",
  columns=[...]))`` writes every row through rxcql's engine, one session per worker process.
- :func:`read_cassandra`: a table as a ``ray.data.Dataset``, one read task per group of token
  ranges, each streaming its pages with bounded memory.

``connect`` is a picklable callable (a module-level function) returning a connected
``cassandra.cluster.Session``; it runs in the worker processes. Importing :mod:`rxcql` does not
import Ray; importing this module does. See docs/ray.md.
"""

from ._sink import CassandraDatasink as CassandraDatasink
from ._sink import FailedRow as FailedRow
from ._sink import SinkOptions as SinkOptions
from ._sink import TooManyWriteErrorsError as TooManyWriteErrorsError
from ._sink import WriteCountError as WriteCountError
from ._sink import WriteReport as WriteReport
from ._source import CassandraDatasource as CassandraDatasource
from ._source import read_cassandra as read_cassandra

__all__ = [
    "CassandraDatasink",
    "CassandraDatasource",
    "FailedRow",
    "SinkOptions",
    "TooManyWriteErrorsError",
    "WriteCountError",
    "WriteReport",
    "read_cassandra",
]
