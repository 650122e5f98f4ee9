"""``rxcql``: load CSV or JSON into a table, unload a table, count its rows.

``rxcql load`` reads a file (or stdin) record by record, parses each field by its column's CQL
type and runs one prepared INSERT per row through :func:`rxcql.execute` (grouped replica
batches, adaptive concurrency, retries, a checkpoint to resume from, a failed log).
``rxcql unload`` streams a table out through :func:`rxcql.scan_table` (parallel token ranges,
bounded memory) in the same formats; ``rxcql count`` counts its rows by token ranges.

Exit status: 0 every row loaded (or unloaded); 1 some rows failed (the count and the failed
log are printed); 2 a usage or connection error. See docs/cli.md.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any, Literal

import click

from ._connect import CannotConnectError, connection_from, connection_options
from ._records import Dialect

__all__ = ["cli", "main"]

USAGE_ERROR = 2
_BATCH_MODES: dict[str, Literal["replica", "partition"] | None] = {
    "replica": "replica",
    "partition": "partition",
    "none": None,
}


class UsageError(click.UsageError):
    pass


def _split_table(keyspace: str | None, table: str) -> tuple[str, str]:
    if keyspace is None:
        if "." not in table:
            raise click.UsageError("give the keyspace: -k KEYSPACE, or -t KEYSPACE.TABLE")
        keyspace, table = table.split(".", 1)
    return keyspace.strip('"'), table.strip('"')


def _columns(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("no column names", param_hint="--columns")
    return names


def _char(text: str, name: str, allow_none: bool = False) -> str | None:
    if allow_none and text.lower() in ("", "none"):
        return None
    text = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(text) != 1:
        raise click.BadParameter(f"one character, not {text!r}", param_hint=name)
    return text


def _dialect(delimiter: str, quote: str, escape: str) -> Dialect:
    return Dialect(
        delimiter=_char(delimiter, "--delimiter") or ",",
        quote=_char(quote, "--quote") or '"',
        escape=_char(escape, "--escape", allow_none=True),
    )


def table_options(function: Any) -> Any:
    options = [
        click.option("-k", "--keyspace", help="The keyspace (or give -t KEYSPACE.TABLE)."),
        click.option("-t", "--table", required=True, help="The table."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def format_options(function: Any) -> Any:
    options = [
        click.option(
            "--format",
            "format_",
            type=click.Choice(["csv", "json"]),
            default="csv",
            show_default=True,
            help="CSV, or JSON lines (one object per line, column -> value).",
        ),
        click.option(
            "--header/--no-header",
            default=True,
            show_default=True,
            help="CSV: the first line names the columns.",
        ),
        click.option(
            "--columns",
            metavar="A,B,C",
            help="The columns, in the order of the fields. Load: default the header's, else "
            "every column; unload: default every column; cqlsh's order: primary key, then the "
            "others by name.",
        ),
        click.option("--delimiter", default=",", show_default=True, help="CSV field separator."),
        click.option("--quote", default='"', show_default=True, help="CSV quote character."),
        click.option(
            "--escape",
            default="\\",
            show_default=True,
            help="CSV escape character (cqlsh's and dsbulk's); 'none' for RFC 4180 (a quote "
            "doubled).",
        ),
        click.option(
            "--null-value",
            default="",
            show_default=True,
            help='CSV: the field that means null (the default: an empty field; "" is an '
            "empty string).",
        ),
        click.option(
            "--text-escapes/--no-text-escapes",
            default=True,
            show_default=True,
            help="CSV: text with cqlsh's escapes (\\\\, \\n, \\t, \\xNN), as COPY TO writes it.",
        ),
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding."),
        click.option("-q", "--quiet", is_flag=True, help="No progress display."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.group(
    context_settings={"help_option_names": ["--help"], "max_content_width": 100},
)
@click.version_option(package_name="rxcql", prog_name="rxcql")
def cli() -> None:
    """Load, unload and count Cassandra tables with rxcql.

    \b
    rxcql load   -k KS -t TABLE -f data.csv      CSV or JSON lines into a table
    rxcql unload -k KS -t TABLE -f data.csv      a table into CSV or JSON lines
    rxcql count  -k KS -t TABLE                  its rows, counted by token ranges

    Exit status: 0 every row loaded (or unloaded), 1 some rows failed, 2 a usage or
    connection error. Connection options (-h, --port, -u, -p, --ssl ...) go after the
    command; RXCQL_CONTACT_POINTS=host:port,... and RXCQL_PASSWORD are read too.
    """


LOAD_EXAMPLES = """\b
Examples:
  rxcql load -k shop -t orders -f orders.csv
  rxcql load -k shop -t orders -f - --format json < orders.jsonl
  rxcql load -t shop.orders -f orders.csv --no-header --columns id,customer,total
  rxcql load -k shop -t orders -f big.csv --checkpoint big.ckpt --failed big.failed
  rxcql load -k shop -t orders -f big.csv --checkpoint big.ckpt --failed big.failed --resume
  rxcql load -k shop -t orders -f big.csv -h 10.0.0.1,10.0.0.2 -u loader --ssl --ssl-ca ca.pem

\b
Defaults: --batch replica, --batch-size 64, --concurrency auto, --retry 3, --max-errors 100.
A line that does not parse is reported with its line number and column, written to
--failed, and counted against --max-errors; so is a row the cluster refuses.
Replay the rows the cluster refused with --replay FILE (after fixing the cause);
lines that did not parse are in the same file with their raw text, to fix and load again.
"""


@cli.command(epilog=LOAD_EXAMPLES)
@table_options
@click.option(
    "-f",
    "--file",
    "file_",
    metavar="FILE|-",
    help="The input file; - for stdin.",
)
@format_options
@click.option(
    "--batch",
    type=click.Choice(["replica", "partition", "none"]),
    default="replica",
    show_default=True,
    help="Group rows into UNLOGGED batches by replica set or partition (docs/bulk.md).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1000),
    default=64,
    show_default=True,
    help="Rows per batch at most (and 32 KiB of values).",
)
@click.option(
    "--concurrency",
    default="auto",
    show_default=True,
    metavar="auto|N",
    help="Requests in flight: a number, or auto (follows the cluster: docs/adaptive.md).",
)
@click.option("--max-rate", type=click.FloatRange(min=1), help="At most this many rows a second.")
@click.option(
    "--retry",
    type=click.IntRange(0, 100),
    default=3,
    show_default=True,
    help="Retries of a request that timed out or found the cluster overloaded or "
    "unavailable (with backoff; the row keeps its write timestamp).",
)
@click.option(
    "--max-errors",
    default="100",
    show_default=True,
    metavar="N|P%",
    help="Stop after more than N rows failed (or more than P% of the rows read); -1: never.",
)
@click.option(
    "--processes",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    help="Run the rows in this many worker processes (rxcql.ProcessPool), while this one "
    "reads and parses: for a client of several cores. 0: in this process.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    help="Write a checkpoint to this file (every second and at the end).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Skip the rows the --checkpoint says are done (the same input, in the same order).",
)
@click.option(
    "--failed",
    type=click.Path(dir_okay=False),
    help="Append every row that failed to this JSON-lines file (mode 0600).",
)
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False),
    help="Instead of -f: run the rows of a failed file again (those the cluster refused).",
    hidden=False,
)
@connection_options
def load(**options: Any) -> int:
    """Load CSV or JSON lines into a table."""
    from . import _load

    if (options["file_"] is None) == (options["replay"] is None):
        raise click.UsageError("give -f FILE (or - for stdin), or --replay FAILED_FILE")
    connection = connection_from(options)
    keyspace, table = _split_table(options["keyspace"], options["table"])
    concurrency_text = str(options["concurrency"]).strip().lower()
    concurrency: int | Literal["auto"]
    if concurrency_text == "auto":
        concurrency = "auto"
    else:
        try:
            concurrency = int(concurrency_text)
            if concurrency < 1:
                raise ValueError
        except ValueError:
            raise click.BadParameter(
                "auto or a positive number", param_hint="--concurrency"
            ) from None
    load_options = _load.LoadOptions(
        keyspace=keyspace,
        table=table,
        file=options["file_"] or options["replay"],
        format=options["format_"],
        header=options["header"] and options["format_"] == "csv",
        columns=_columns(options["columns"]),
        dialect=_dialect(options["delimiter"], options["quote"], options["escape"]),
        null_value=options["null_value"],
        text_escapes=options["text_escapes"],
        encoding=options["encoding"],
        batch=_BATCH_MODES[options["batch"]],
        batch_size=options["batch_size"],
        concurrency=concurrency,
        max_rate=options["max_rate"],
        retry=options["retry"],
        max_errors=_load.max_errors_option(options["max_errors"]),
        checkpoint=options["checkpoint"],
        resume=options["resume"],
        failed=options["failed"],
        quiet=options["quiet"],
        processes=options["processes"],
    )
    if options["replay"]:
        return _load.replay(load_options, options["replay"], connection)
    return _load.run(load_options, connection)


UNLOAD_EXAMPLES = """\b
Examples:
  rxcql unload -k shop -t orders -f orders.csv
  rxcql unload -k shop -t orders -f - --format json | gzip > orders.jsonl.gz
  rxcql unload -t shop.orders -f open.csv --columns id,total --where "status = 'open'"

\b
The output is read back by rxcql load to the same table contents, and by cqlsh's
COPY FROM (the same text forms as cqlsh's COPY TO, without its rounding of floats).
Memory stays bounded for any table size: at most a few pages of rows are held.
"""


@cli.command(epilog=UNLOAD_EXAMPLES)
@table_options
@click.option(
    "-f",
    "--file",
    "file_",
    required=True,
    metavar="FILE|-",
    help="The output file; - for stdout.",
)
@format_options
@click.option(
    "--where",
    help="A CQL condition each token range query adds (AND ... ALLOW FILTERING): the server "
    "filters, the whole table is read.",
)
@click.option(
    "--splits",
    type=click.IntRange(min=1),
    help="Token ranges to read (default: every vnode range, at least 16 per node).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Token range queries at once.",
)
@click.option("--fetch-size", type=click.IntRange(min=1), default=5000, show_default=True)
@connection_options
def unload(**options: Any) -> int:
    """Unload a table into CSV or JSON lines."""
    from . import _unload

    connection = connection_from(options)
    keyspace, table = _split_table(options["keyspace"], options["table"])
    return _unload.run(
        _unload.UnloadOptions(
            keyspace=keyspace,
            table=table,
            file=options["file_"],
            format=options["format_"],
            header=options["header"] and options["format_"] == "csv",
            columns=_columns(options["columns"]),
            where=options["where"],
            dialect=_dialect(options["delimiter"], options["quote"], options["escape"]),
            null_value=options["null_value"],
            text_escapes=options["text_escapes"],
            encoding=options["encoding"],
            splits=options["splits"],
            concurrency=options["concurrency"],
            fetch_size=options["fetch_size"],
            quiet=options["quiet"],
        ),
        connection,
    )


COUNT_EXAMPLES = """\b
Examples:
  rxcql count -k shop -t orders
  rxcql count -t shop.orders --where "status = 'open'"
"""


@cli.command(epilog=COUNT_EXAMPLES)
@table_options
@click.option("--where", help="Count only the rows that match (ALLOW FILTERING).")
@click.option("--splits", type=click.IntRange(min=1), help="Token ranges to count.")
@connection_options
def count(**options: Any) -> int:
    """Count the rows of a table (one count query per token range)."""
    from . import _unload

    connection = connection_from(options)
    keyspace, table = _split_table(options["keyspace"], options["table"])
    return _unload.count(keyspace, table, options["where"], options["splits"], connection)


class _Named(logging.Formatter):
    """``logger: message``, unless the message names its logger already."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if text.startswith(record.name + ":") else f"{record.name}: {text}"


def _quiet_negotiation(record: logging.LogRecord) -> bool:
    """The driver's warnings while it negotiates the protocol version are not news here, nor
    its traceback of a statement the server refused to prepare (the command says why)."""
    return not record.getMessage().startswith(
        ("Downgrading core protocol version", "Error preparing query")
    )


def _quiet_batch_warnings(record: logging.LogRecord) -> bool:
    """The server's warnings about batch sizes and partitions per batch are expected in a bulk
    load (rxcql counts them in one line at the end); one per batch would flood the terminal."""
    message = record.getMessage()
    return not message.startswith(
        (
            "Server warning: Batch for [",
            "Server warning: Unlogged batch covering",
            "rxcql: the server warned about",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The ``rxcql`` console script; returns the exit status."""
    from ._load import CliUsageError

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Named())
    handler.addFilter(_quiet_negotiation)
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("cassandra.protocol").addFilter(_quiet_batch_warnings)
    logging.getLogger("rxcql").addFilter(_quiet_batch_warnings)
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name="rxcql", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except (CliUsageError, CannotConnectError) as exc:
        click.echo(f"rxcql: error: {exc}", err=True)
        return USAGE_ERROR
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return result if isinstance(result, int) else 0
