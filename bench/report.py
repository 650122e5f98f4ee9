"""Tables (Markdown) from a run's results, the machine description, and docs/benchmarks.md."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cassandra.concurrent

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "img" / "scaling.png"

FLOOR = "floor"
FLOOR_LIST = "floor_list"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kib = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    dirty = _git("status", "--porcelain", "--", "rxcql")

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    compiled = not str(cassandra.concurrent.__file__).endswith(".py")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cassandra_driver": version("cassandra-driver")
        + (" (Cython-compiled modules)" if compiled else " (pure Python)"),
        "reactivex": version("reactivex"),
        "rxcql": version("rxcql")
        + (f" @ {_git('rev-parse', '--short', 'HEAD')}" if _git("rev-parse", "HEAD") else "")
        + (" + uncommitted changes in rxcql/" if dirty else ""),
        "load_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


# -- formatting -----------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _per_stmt_us(sample: dict[str, Any], what: str = "wall") -> float:
    return float(_median(sample[what]) / sample["n"] * 1e6)


def _gc_us(sample: dict[str, Any], fmt: str) -> str:
    """Median time in the garbage collector per statement ("—" for results without it)."""
    return format(_per_stmt_us(sample, "gc"), fmt) if sample.get("gc") else "—"


def _throughput(sample: dict[str, Any]) -> float:
    return float(sample["n"] / _median(sample["wall"]))


def _mb(n: float | None) -> str:
    return "—" if n is None else f"{n / 1e6:,.1f} MB"


def time_ratio(mine: dict[str, Any], theirs: dict[str, Any]) -> float:
    """Median over repeats of mine's wall time / theirs in the same repeat (paired: the two ran
    close together, so noise that lasts longer than a repeat cancels)."""
    pairs = [a / b for a, b in zip(mine["wall"], theirs["wall"], strict=False) if b > 0]
    return _median(pairs) if pairs else float("nan")


def throughput_ratio(mine: dict[str, Any], theirs: dict[str, Any]) -> float:
    """Median over repeats of mine's throughput / theirs in the same repeat."""
    return 1.0 / time_ratio(mine, theirs)


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}x"


def fake_section(part: dict[str, Any], labels: dict[str, tuple[str, str | None]]) -> str:
    samples: dict[str, Any] = part["samples"]
    no_gc: dict[str, Any] = part.get("samples_gc_off", {})
    rows = []
    for key, (label, baseline) in labels.items():
        if key not in samples:
            rows.append([f"`{key}` {label}", "n/a (not available)", "", "", "", "", ""])
            continue
        s = samples[key]
        us, cpu = _per_stmt_us(s), _per_stmt_us(s, "cpu")
        vs_driver = time_ratio(s, samples[baseline]) if baseline in samples else None
        vs_floor = time_ratio(s, samples[FLOOR]) if FLOOR in samples else None
        base_label = "" if baseline is None else f" vs `{baseline}`"
        rows.append(
            [
                f"`{key}` {label}",
                f"{us:.2f}",
                f"{cpu:.2f}",
                _ratio(vs_driver) + base_label,
                _ratio(vs_floor),
                _gc_us(s, ".2f"),
                f"{_per_stmt_us(no_gc[key]):.2f}" if key in no_gc else "—",
                str(len(s["wall"])),
            ]
        )
    return table(
        [
            "contender",
            "µs / statement (median wall)",
            "CPU µs / statement",
            "vs driver",
            "vs floor",
            "of which garbage collector",
            "µs / statement, collector off",
            "runs",
        ],
        rows,
    )


def node_section(part: dict[str, Any], labels: dict[str, tuple[str, str | None]]) -> str:
    out = []
    for op in ("insert", "select"):
        runs = [r for r in part["runs"] if r["op"] == op]
        if not runs:
            continue
        concurrencies = [r["concurrency"] for r in runs]
        header = ["contender"] + [
            f"c={c}: stmt/s (vs driver) · CPU µs/stmt · of which GC" for c in concurrencies
        ]
        rows = []
        for key, (_label, baseline) in labels.items():
            row: list[object] = [f"`{key}`"]
            for run in runs:
                samples = run["samples"]
                if key not in samples:
                    row.append("n/a")
                    continue
                tput = _throughput(samples[key])
                ratio = (
                    throughput_ratio(samples[key], samples[baseline])
                    if baseline in samples
                    else None
                )
                cell = f"{tput:,.0f}"
                if ratio is not None:
                    cell += f" ({ratio:.2f}x)"
                cell += f" · {_per_stmt_us(samples[key], 'cpu'):.0f}"
                cell += f" · {_gc_us(samples[key], '.0f')}"
                row.append(cell)
            rows.append(row)
        what = "prepared INSERT" if op == "insert" else "prepared SELECT by key"
        out.append(
            f"**{what}**, {runs[0]['samples'][next(iter(runs[0]['samples']))]['n']:,} "
            f"statements per run\n\n" + table(header, rows)
        )
    return "\n\n".join(out)


def big_section(big: dict[str, Any]) -> str:
    rows = [
        [
            f"`{key}`",
            "results_generator=True" if b.get("mode") == "stream" else "list of results",
            f"{b['n']:,}",
            f"{b['wall']:.1f} s",
            f"{b['n'] / b['wall']:,.0f}",
            f"{b['cpu'] / b['n'] * 1e6:.0f}",
            _mb(b.get("rss_growth")),
            f"{b['spot_found']}/{b['spot_checked']}",
        ]
        for key, b in big.items()
    ]
    return table(
        [
            "contender",
            "mode",
            "statements",
            "wall time",
            "stmt/s",
            "CPU µs/stmt",
            "RSS growth",
            "keys read back",
        ],
        rows,
    )


def memory_section(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        problem = r.get("problem")
        ahead = None
        if "issued" in r:
            ahead = r["issued"] - r.get("consumed", 0)
        rows.append(
            [
                r["scenario"],
                f"{r['n']:,}",
                r["contender"],
                _mb(r.get("peak_growth")) if not problem else f"FAILED: {problem}",
                f"{r.get('wall', 0):.1f} s",
                f"{r.get('consumed', 0):,}",
                f"{r.get('issued', 0):,}",
                "—" if ahead is None else f"{ahead:,}",
                "—"
                if r.get("issued_at_first_result") is None
                else f"{r['issued_at_first_result']:,}",
            ]
        )
    return table(
        [
            "scenario",
            "N",
            "contender",
            "peak RSS growth",
            "wall",
            "results read",
            "statements issued",
            "issued, not read",
            "issued before result 0 was read",
        ],
        rows,
    )


def scaling_section(part: dict[str, Any]) -> str:
    rows = []
    for point in part["points"]:
        s = point["samples"]
        d, r = s.get("driver_list"), s.get("rxcql_list")
        if d is None or r is None:
            continue
        rows.append(
            [
                point["concurrency"],
                f"{d['n']:,}",
                f"{_throughput(d):,.0f}",
                f"{_throughput(r):,.0f}",
                f"{throughput_ratio(r, d):.2f}x",
                f"{_per_stmt_us(d, 'cpu'):.0f}",
                f"{_per_stmt_us(r, 'cpu'):.0f}",
            ]
        )
    return table(
        [
            "concurrency",
            "statements",
            "driver stmt/s",
            "rxcql stmt/s",
            "rxcql / driver",
            "driver CPU µs/stmt",
            "rxcql CPU µs/stmt",
        ],
        rows,
    )


def _best(samples: dict[str, Any], keys: Iterable[str]) -> str | None:
    """The key with the highest median throughput among ``keys`` that ran."""
    ran = [k for k in keys if k in samples]
    return max(ran, key=lambda k: _throughput(samples[k])) if ran else None


def _bulk_groups(part: dict[str, Any]) -> tuple[str | None, str | None]:
    """The best ``driver_list`` concurrency and the best batched rxcql contender of a run."""
    samples = part["samples"]
    drivers = [k for k in part["labels"] if k.startswith("driver_list")]
    batched = [k for k in part["labels"] if k.startswith("rxcql_") and k != "rxcql_rows"]
    return _best(samples, drivers), _best(samples, batched)


def bulk_section(part: dict[str, Any]) -> str:
    samples: dict[str, Any] = part["samples"]
    unavailable: dict[str, str] = part.get("unavailable", {})
    best_driver, _ = _bulk_groups(part)
    reasons: dict[str, int] = {}
    rows = []
    for key, label in part["labels"].items():
        if key in unavailable:
            note = reasons.setdefault(unavailable[key], len(reasons) + 1)
            rows.append([f"`{key}` {label}", f"n/a ({note})", "", "", "", ""])
            continue
        if key not in samples:
            rows.append([f"`{key}` {label}", "did not run", "", "", "", ""])
            continue
        s = samples[key]
        vs = (
            f"{throughput_ratio(s, samples[best_driver]):.2f}x"
            if best_driver is not None and key != best_driver
            else "—"
        )
        rows.append(
            [
                f"`{key}` {label}",
                f"{_throughput(s):,.0f}",
                vs,
                f"{_per_stmt_us(s, 'cpu'):.1f}",
                _gc_us(s, ".1f"),
                str(len(s["wall"])),
            ]
        )
    header = [
        "contender",
        "rows/s (median)",
        f"vs `{best_driver}`" if best_driver else "vs best `driver_list`",
        "client CPU µs/row",
        "of which GC",
        "runs",
    ]
    notes = [f"n/a ({number}): {reason}" for reason, number in reasons.items()]
    return "\n\n".join([table(header, rows), *notes])


def _batched_targets(part: dict[str, Any]) -> list[str]:
    """The three targets of issue 15 for the best batched rxcql contender of the run."""
    samples: dict[str, Any] = part["samples"]
    best_driver, best_batched = _bulk_groups(part)
    if best_driver is None:
        return []
    d = samples[best_driver]
    java = samples.get("java_batch")
    out = []
    if best_batched is None:
        reasons = {v for k, v in part.get("unavailable", {}).items() if k.startswith("rxcql_")}
        out.append(
            "bulk, rxcql batched: n/a ("
            + ("; ".join(sorted(reasons)) or "did not run")
            + "): the targets (≥ 3.0x `driver_list` at its best concurrency, ≥ 0.75x the Java "
            "driver batched, ≤ 15 client CPU µs/row) are not measured"
        )
    else:
        b = samples[best_batched]
        vs_driver = throughput_ratio(b, d)
        out.append(
            f"bulk, best rxcql batched `{best_batched}` / `{best_driver}` throughput = "
            f"{vs_driver:.2f}x (target ≥ 3.0x): " + ("met" if vs_driver >= 3.0 else "NOT met")
        )
        if java is not None:
            vs_java = throughput_ratio(b, java)
            out.append(
                f"bulk, `{best_batched}` / `java_batch` throughput = {vs_java:.2f}x "
                "(target ≥ 0.75x): " + ("met" if vs_java >= 0.75 else "NOT met")
            )
        else:
            out.append("bulk, rxcql batched / `java_batch`: not measured (no Java contender)")
        cpu = _per_stmt_us(b, "cpu")
        out.append(
            f"bulk, `{best_batched}` client CPU = {cpu:.1f} µs/row (target ≤ 15 µs): "
            + ("met" if cpu <= 15.0 else "NOT met")
        )
    return out


def bulk_targets(part: dict[str, Any]) -> list[str]:
    """Issue 15's targets for batched writes, measured in this run (reported, never asserted),
    with the figures they are measured against."""
    samples: dict[str, Any] = part["samples"]
    best_driver, _ = _bulk_groups(part)
    if best_driver is None:
        return []
    d = samples[best_driver]
    out = [
        f"bulk, best `driver_list` concurrency: `{best_driver}`, {_throughput(d):,.0f} rows/s, "
        f"{_per_stmt_us(d, 'cpu'):.0f} client CPU µs/row",
        *_batched_targets(part),
    ]
    for key in ("rxcql_rows", "java_rows", "java_batch"):
        if key in samples:
            out.append(
                f"bulk, `{key}` / `{best_driver}` throughput = "
                f"{throughput_ratio(samples[key], d):.2f}x (for reference)"
            )
    return out


# -- adaptive concurrency -------------------------------------------------------------------------

#: The adaptive section sits between these markers, so that ``--update-docs`` can replace it alone.
ADAPTIVE_BEGIN = "<!-- bench:adaptive:begin -->"
ADAPTIVE_END = "<!-- bench:adaptive:end -->"

_ADAPTIVE_LABELS = {
    "insert": "prepared INSERT, one row per request",
    "batch": 'prepared INSERT, `batch="replica", batch_size={batch_size}` (concurrency counts '
    "requests: a batch is one)",
    "select": "prepared SELECT by key",
}


def _ms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:  # nan: no requests
        return "—"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    ms = seconds * 1e3
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _failures(cell: dict[str, Any], key: str) -> int:
    return sum(int(r.get("failures", 0)) for r in cell.get("runs", {}).get(key, []))


def _adaptive_keys(cell: dict[str, Any]) -> tuple[list[str], str | None]:
    """The fixed keys (``c<C>``, in increasing C) that ran, and the best of them: the highest
    median rows/s among the settings without failed statements (among all if every one had)."""
    samples = cell["samples"]
    fixed = sorted((k for k in samples if k.startswith("c")), key=lambda k: int(k[1:]))
    clean = [k for k in fixed if _failures(cell, k) == 0]
    return fixed, _best(samples, clean or fixed)


def _median_of(runs: list[dict[str, Any]], what: str) -> float | None:
    values = [r[what] for r in runs if r.get(what) is not None and r[what] == r[what]]
    return _median(values) if values else None


#: The adaptive contenders' keys and labels (bench.adaptive.AUTO, AUTO_LATENCY).
_AUTO_LABELS = {
    "auto": '`concurrency="auto"`',
    "auto_latency": '`"auto"`, latency rules only',
}


def _limit_cell(key: str, runs: list[dict[str, Any]]) -> str:
    if key not in _AUTO_LABELS:
        return "fixed"
    limits = [r["limit"] for r in runs if r.get("limit") is not None]
    if not limits:
        return "—"
    each = ", ".join(f"{x:g}" for x in limits)
    return f"{_median(limits):.0f}" + (f" ({each})" if len(limits) > 1 else "")


def adaptive_table(cell: dict[str, Any]) -> str:
    """One workload: a row per contender (fixed settings, then auto)."""
    samples: dict[str, Any] = cell["samples"]
    runs: dict[str, list[dict[str, Any]]] = cell.get("runs", {})
    fixed, best = _adaptive_keys(cell)
    rows = []
    for key in [*fixed, *_AUTO_LABELS]:
        if key not in samples:
            continue
        s, r = samples[key], runs.get(key, [])
        vs = "—" if best is None or key == best else f"{throughput_ratio(s, samples[best]):.2f}x"
        row = [
            _AUTO_LABELS.get(key, f"`concurrency={key[1:]}`"),
            f"{_throughput(s):,.0f}",
            vs,
            _ms(_median_of(r, "p50")),
            _ms(_median_of(r, "p99")),
            f"{_per_stmt_us(s, 'cpu'):.0f}",
        ]
        row += [f"{_failures(cell, key):,}", _limit_cell(key, r), str(len(s["wall"]))]
        rows.append(row)
    header = [
        "concurrency",
        "rows/s (median)",
        f"vs best fixed (`{best}`)" if best else "vs best fixed",
        "p50 request latency",
        "p99 request latency",
        "client CPU µs/row",
    ]
    header += ["failed statements (all runs)", "limit settled on", "runs"]
    return table(header, rows)


def adaptive_targets(part: dict[str, Any]) -> list[str]:
    """``auto`` against the best fixed setting of each workload (target ≥ 0.9x)."""
    out = []
    for cell in part.get("workloads", []):
        samples = cell["samples"]
        _, best = _adaptive_keys(cell)
        if best is None or "auto" not in samples:
            continue
        ratio = throughput_ratio(samples["auto"], samples[best])
        failed = _failures(cell, "auto")
        met = ratio >= 0.9 and failed == 0
        out.append(
            f"adaptive, {cell['name']}: `auto` / best fixed `{best}` throughput = {ratio:.2f}x "
            "(target ≥ 0.9x)"
            + (f", {failed:,} failed statements" if failed else "")
            + ": "
            + ("met" if met else "NOT met")
        )
    return out


def _without_note(command: str) -> str:
    """The command with the text of ``--adaptive-note`` elided (the section shows the note)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    for i, word in enumerate(words[:-1]):
        if word == "--adaptive-note":
            words[i + 1] = "…"
    return shlex.join(words)


def adaptive_section(part: dict[str, Any], meta: dict[str, Any]) -> str:
    """Section 6, between its markers (see :func:`update_section`)."""
    m = meta["machine"]
    repeats = part.get("repeats", 0)
    concurrencies = ", ".join(str(c) for c in part.get("concurrencies", []))
    lines = [
        ADAPTIVE_BEGIN,
        '## 6. Adaptive concurrency: `concurrency="auto"` against fixed settings',
        "",
        f"This section: measured {m['date']} by `{_without_note(meta['command'])}` in "
        f"{part.get('duration_s', 0) / 60:.1f} minutes; rxcql {m['rxcql']}, Cassandra "
        f"{meta.get('cassandra', '?')}, load average (1 min) {m.get('load_start') or 0:.2f} at "
        f"the start. A plain Python loop of 10M additions took {part['calibration_s']:.2f} s "
        "at the start of this part.",
        "",
    ]
    if part.get("note"):
        lines += [f"**Note.** {part['note']}", ""]
    found = adaptive_targets(part)
    if found:
        lines += [
            "Target: `auto` reaches at least 0.9x the throughput of the best fixed setting of "
            "each workload. " + "; ".join(t.removeprefix("adaptive, ") for t in found) + ".",
            "",
        ]
    for cell in part.get("workloads", []):
        if not cell.get("samples"):
            continue
        what = _ADAPTIVE_LABELS.get(cell["name"], cell["name"]).format(
            batch_size=part.get("batch_size")
        )
        lines += [f"**{what}**, {cell['n']:,} rows per run", "", adaptive_table(cell), ""]
    overload = part.get("overload", {})
    if overload.get("samples"):
        lines += [
            f"**Overload**: a scratch node (`rxcql_dev`, 1 GB heap, {overload.get('node')}) with "
            "`native_transport_rate_limiting_enabled: true`, "
            f"`native_transport_max_requests_per_second: {overload['rate']:,}`; prepared "
            f"one-row INSERTs, {overload['n']:,} rows per run.",
            "",
            adaptive_table(overload),
            "",
        ]
    elif overload.get("skipped"):
        lines += [f"Overload scenario: {overload['skipped']}.", ""]
    lines += [
        "How it is measured: every contender is `rxcql.execute(..., raise_on_first_error=False)"
        ".subscribe` with the same observer, which checks as in part 2 the count and that "
        "result *i* belongs to statement *i*, and with the same progress callback "
        f"(`progress_interval={part.get('progress_interval')}`), so "
        f"the fixed settings ({concurrencies}) pay for the request timing that a progress "
        f'callback turns on, as `auto` does. `"auto"`, latency rules only` is `auto` with '
        "its client-bound rule switched off for the run (`AdaptiveLimit.CLIENT_BOUND` out of "
        "reach; docs/adaptive.md): what the rule adds, measured in the same run. "
        f"Repeats: {repeats}, outermost; each repeat "
        "visits the workloads forward then backward, and within a workload runs the contenders "
        "forward then backward. Rows/s is rows / median wall time, client CPU the median "
        "process CPU time per row (every thread, as in part 2); a ratio is the median of the "
        "paired ratios to the best fixed setting (highest median rows/s) of that workload. "
        "Request latency is measured outside rxcql: the session is wrapped in a proxy whose "
        "`execute_async` notes the time before calling the driver's and adds its own callback "
        "pair to the returned ResponseFuture; p50 and p99 are over all requests of a run (a "
        "batch is one request), the median over runs. The limit `auto` settled on is the median "
        "of `Progress.concurrency` over the second half of a run's progress reports (the median "
        "over runs; each run's in parentheses). Each INSERT run overwrites the same keys of "
        f"`kv_bulk` (bigint key); {part.get('spot_check', 0):,} random keys are deleted before "
        "it and read back after it (but for the keys of failed statements). The SELECTs read "
        "`kv_read`, populated beforehand. A failed statement (a server-side timeout with too "
        "many requests in flight) is counted, not fatal: it is an outcome of that setting, and "
        "the best fixed setting is the fastest among those without failures. Every other check "
        "of part 2 holds: one result per statement, each success carries its own key.",
        "",
        ADAPTIVE_END,
    ]
    return "\n".join(lines)


def _cli_median(runs: list[dict[str, Any]], what: str) -> float:
    return _median([run[what] for run in runs])


def _cli_rate(part: dict[str, Any], key: str) -> float | None:
    runs = part["samples"].get(key) or []
    return part["n"] / _cli_median(runs, "wall") if runs else None


def _cli_best_cqlsh(part: dict[str, Any], kind: str) -> tuple[str | None, float | None]:
    best: tuple[str | None, float | None] = (None, None)
    for key, runs in part["samples"].items():
        if not key.startswith("cqlsh") or part["kinds"][key] != kind or not runs:
            continue
        rate = _cli_rate(part, key)
        if rate is not None and (best[1] is None or rate > best[1]):
            best = (key, rate)
    return best


def cli_section(part: dict[str, Any]) -> str:
    """The cli part's table: rows/s, ratio to the best cqlsh of the same direction, CPU (the
    client's and the node's), RSS."""
    n = part["n"]
    cores = part.get("cpus") or os.cpu_count() or 0
    rows = []
    for kind in ("load", "unload"):
        best_key, best_rate = _cli_best_cqlsh(part, kind)
        for key, runs in part["samples"].items():
            if part["kinds"][key] != kind or not runs:
                continue
            rate = _cli_rate(part, key) or 0.0
            cpu = _cli_median(runs, "cpu")
            node_runs = [r for r in runs if r.get("node_cpu") is not None]
            node = _cli_median(node_runs, "node_cpu") if node_runs else None
            rows.append(
                [
                    part["labels"][key],
                    f"{rate:,.0f}",
                    _ratio(rate / best_rate) if best_rate and key != best_key else "—",
                    f"{_cli_median(runs, 'wall'):.1f}",
                    f"{cpu:.1f} ({cpu / n * 1e6:.0f})",
                    f"{node / n * 1e6:.0f}" if node is not None else "",
                    (
                        f"{cores * 1e6 / ((cpu + node) / n * 1e6):,.0f}"
                        if node is not None and cores
                        else ""
                    ),
                    f"{_cli_median(runs, 'rss_peak') / 2**20:.0f}",
                ]
            )
    header = [
        f"{n:,} rows",
        "rows/s",
        "vs best cqlsh",
        "wall s",
        "CPU s (µs/row)",
        "node CPU µs/row",
        f"{cores}-core bound rows/s",
        "peak RSS MiB",
    ]
    size = part.get("file_bytes", 0) / 2**20
    node_text = (
        "Before each run the bench waits (at most 2 minutes) until the node is idle (under "
        "0.15 of a core over a second), so that one load's flushes and compactions do not land "
        "on the next contender. Node CPU: what the local Cassandra process spent during the "
        f"run, per row; the {cores}-core bound is the rate at which client and node together "
        f"would keep all {cores} cores busy (cores / (client + node CPU per row)): no contender "
        "on this machine can go faster than its own bound."
    )
    remote_text = "The node is not a local process: its CPU is not measured."
    return (
        f"{n:,} rows of `(id bigint PRIMARY KEY, name text, qty int, price decimal, created "
        f"timestamp, tags set<text>)`, a {size:.0f} MiB CSV file; {part['repeats']} repeat(s), "
        "medians; each run a fresh process timed from start to exit. CPU: the process and its "
        "children (cqlsh's workers), every thread; peak RSS: its process tree, sampled every "
        '50 ms. "vs best cqlsh": rows/s over the fastest cqlsh variant of the same '
        "direction. "
        + (node_text if part.get("node_measured") else remote_text)
        + "\n\n"
        + table(header, rows)
    )


def cli_targets(part: dict[str, Any]) -> list[str]:
    out = []
    for key, kind, goal in (("rxcql_load", "load", 2.0), ("rxcql_unload", "unload", 1.5)):
        mine = _cli_rate(part, key)
        best_key, best = _cli_best_cqlsh(part, kind)
        if mine is None or best is None:
            continue
        ratio = mine / best
        verdict = "met" if ratio >= goal else "NOT met"
        out.append(
            f"cli, `{key}` rows/s / best cqlsh (`{best_key}`) = {ratio:.2f}x "
            f"(target ≥ {goal}x): {verdict}"
        )
    return out


def update_section(
    section: str,
    path: Path = DOCS,
    begin_marker: str = ADAPTIVE_BEGIN,
    end_marker: str = ADAPTIVE_END,
) -> Path:
    """Replace a section of the page at ``path`` (between its markers, the adaptive one's by
    default) with ``section``; a page without it gets it before "## How it is measured" (else at
    the end)."""
    text = path.read_text()
    begin, end = text.find(begin_marker), text.find(end_marker)
    if begin >= 0 and end > begin:
        text = text[:begin] + section + text[end + len(end_marker) :]
    else:
        at = text.find("## How it is measured")
        if at < 0:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        else:
            text = text[:at] + section + "\n\n" + text[at:]
    path.write_text(text)
    return path


# -- targets --------------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets, each measured against this run (reported, never asserted)."""
    out = []
    fake = results.get("fake")
    if fake:
        s = fake["samples"]
        for mine, theirs in (("rxcql_list", "driver_list"), ("rxcql_gen", "driver_gen")):
            if mine in s and theirs in s:
                ratio = time_ratio(s[mine], s[theirs])
                verdict = "met" if ratio <= 0.6 else "NOT met"
                out.append(
                    f"fake session, `{mine}` cost / `{theirs}` cost = {ratio:.2f}x "
                    f"(target ≤ 0.6x): {verdict}"
                )
        if FLOOR_LIST in s and "driver_list" in s:
            bound = time_ratio(s[FLOOR_LIST], s["driver_list"])
            out.append(
                f"fake session, `{FLOOR_LIST}` cost / `driver_list` cost = {bound:.2f}x: the least "
                "any list mode costs here (a refill loop that only builds and keeps the results)"
            )
    node = results.get("node")
    if node:
        for mine, theirs in (
            ("rxcql_list", "driver_list"),
            ("rxcql_gen", "driver_gen"),
            ("rxcql_subscribe", "driver_list"),
        ):
            ratios = [
                (
                    run["op"],
                    run["concurrency"],
                    throughput_ratio(run["samples"][mine], run["samples"][theirs]),
                )
                for run in node["runs"]
                if mine in run["samples"] and theirs in run["samples"]
            ]
            if ratios:
                worst = min(ratios, key=lambda x: x[2])
                verdict = "met" if worst[2] >= 1.0 else "NOT met"
                out.append(
                    f"real node, `{mine}` / `{theirs}` throughput: "
                    + ", ".join(f"{op} c={c} {r:.2f}x" for op, c, r in ratios)
                    + f" (target ≥ 1.0x everywhere): {verdict}"
                )
    memory = results.get("memory", {}).get("runs")
    if memory:
        for contender in ("rxcql", "driver"):
            for scenario in ("keep_up", "slow", "first_delayed"):
                by_n = {
                    r["n"]: r.get("peak_growth")
                    for r in memory
                    if r["contender"] == contender and r["scenario"] == scenario
                }
                if len(by_n) >= 2 and None not in by_n.values():
                    small, large = min(by_n), max(by_n)
                    a, b = by_n[small], by_n[large]
                    flat = b <= a * 1.5 + 5e6
                    out.append(
                        f"memory, {contender} {scenario}: {_mb(a)} at N={small:,}, "
                        f"{_mb(b)} at N={large:,}: " + ("flat" if flat else "grows")
                    )
    bulk = results.get("bulk")
    if bulk and bulk.get("samples"):
        out += bulk_targets(bulk)
    adaptive = results.get("adaptive")
    if adaptive:
        out += adaptive_targets(adaptive)
    cli = results.get("cli")
    if cli and cli.get("samples"):
        out += cli_targets(cli)
    return out


# -- the whole report -----------------------------------------------------------------------------

METHOD = """\
## How it is measured

* **Interleaved.** Every repeat runs each contender once, in rotation (A B C … then B C … A), so
  that drift and noise from the rest of the machine fall on all contenders alike. The tables show
  the median per contender; a ratio is the median over repeats of the ratio between the two
  contenders' runs in the same repeat (paired, so that slower stretches of the machine cancel).
  Against the node, the repeats are outermost: each repeat sweeps every cell (operation x
  concurrency), forward then backward, so a noisy minute lands on one repeat of many cells rather
  than on every repeat of one cell.
* **Verified.** Every contender checks its own results: the count, that every statement
  succeeded, and that result *i* belongs to statement *i* (the fake returns each statement's
  parameters as its row; for the node, an INSERT's bound key is read back from the future's bound
  statement, a SELECT's row carries its key). A wrong result stops the benchmark with a failure.
  List modes are checked after the clock stops; streaming consumers check each result in their
  loop (the same few attribute reads for all of them).
* **Same heap at the start of each run**: `gc.collect()` then `gc.freeze()`, so full collections
  during a run only see what that run allocated. The collector stays on (it is part of the cost).
* **CPU** is `time.process_time()` over the run: every thread of the client process (the caller,
  the driver's IO thread or the fake's completion thread).
* **Contenders.** `floor`: a hand-written refill loop (execute_async + add_callbacks, the next
  statement issued from the callback; nothing kept, no ordering) — the least any library can cost.
  `floor_list`: the same loop, also building each statement's `ExecutionResult(True, ResultSet)`
  and keeping it by index (no ordering work): the least any list mode can cost, the garbage
  collector's work on a list of results included.
  `driver_list` / `driver_gen`: `cassandra.concurrent.execute_concurrent` with
  `results_generator=False` / `True`. `rxcql_list` / `rxcql_gen`: the same calls from rxcql.
  `rxcql_subscribe`: `rxcql.execute(...)` subscribed with an observer (emissions on the IO
  thread). `asyncio_iterate` / `asyncio_collect`: `async for r in rxcql.aiterate(...)` and
  `await rxcql.collect(...)`, n/a when the installed rxcql does not have them yet. "vs driver"
  compares list-style contenders (`rxcql_list`, `rxcql_subscribe`, `asyncio_collect`) with
  `driver_list` and streaming ones (`rxcql_gen`, `asyncio_iterate`) with `driver_gen`.
* **Fake session** (part 1): `bench/fake.py`, a lean stand-in for the driver's session and
  ResponseFuture (driver callback semantics: a callback added after completion runs at once on the
  caller's thread) whose single completion thread completes futures in order as soon as they are
  queued. Input: a prebuilt list of (statement, parameters).
* **Real node** (parts 2 and 4): Cassandra 5.0 from `scripts/cassandra` on the same 2 cores as the
  client, protocol v5, `RoundRobinPolicy`, rows as tuples (`tuple_factory`), keyspace
  `rxcql_bench` (RF 1). INSERTs overwrite the same keys run after run; SELECTs read keys from a
  table populated once. Throughput is statements / median wall time.
* **Memory** (part 3): see the notes under its table.
* **Bulk writes** (part 5): see the notes under its table.
* **Adaptive concurrency** (part 6): see the notes under its tables.
"""


def render(results: dict[str, Any], labels: dict[str, tuple[str, str | None]]) -> str:
    meta = results["meta"]
    m = meta["machine"]
    parts = [
        "# rxcql benchmarks",
        "",
        "Generated by `python -m bench --write-docs` (bench/); do not edit by hand.",
        "",
        f"Run: {m['date']}, {meta['duration_s'] / 60:.1f} minutes"
        + (
            " ("
            + ", ".join(f"{k} {v / 60:.1f}" for k, v in meta.get("durations_s", {}).items())
            + ")"
            if meta.get("durations_s")
            else ""
        )
        + f". Command: `{meta['command']}`.",
        "",
        "## Machine",
        "",
        table(
            ["", ""],
            [
                ["CPU", f"{m['cpus']} x {m['cpu_model']}"],
                ["memory", f"{m['memory_gib']} GiB"],
                ["OS", m["os"]],
                ["Python", m["python"]],
                ["cassandra-driver", m["cassandra_driver"]],
                ["reactivex", m["reactivex"]],
                ["rxcql", m["rxcql"]],
                ["Cassandra", meta.get("cassandra", "not used")],
                [
                    "load average (1 min) at start / end",
                    f"{m.get('load_start', 0) or 0:.2f} / {meta.get('load_end', 0) or 0:.2f}",
                ],
            ],
        ),
        "",
        "The Cassandra node shares the client's cores. Other work on the machine during the run "
        "(the load average above) adds noise; interleaving makes it fall on every contender alike.",
        "",
    ]
    if results.get("failures"):
        parts += ["## FAILURES", ""] + [f"* {f}" for f in results["failures"]] + [""]
    found = targets(results)
    if found:
        parts += ["## Targets (measured, not asserted)", ""] + [f"* {t}" for t in found] + [""]
    fake = results.get("fake")
    if fake:
        parts += [
            "## 1. Client overhead, zero-latency fake session",
            "",
            f"{fake['n']:,} statements, concurrency {fake['concurrency']}, "
            f"{fake['repeats']} interleaved repeats.",
            "",
            fake_section(fake, labels),
            "",
            '"Of which garbage collector" is the median time the cyclic garbage collector ran '
            "during a run (any thread, timed with `gc.callbacks`), per statement. The last column "
            "repeats the runs with the collector disabled "
            f"({fake.get('gc_off_repeats', 0)} interleaved repeats): the list modes keep "
            f"{fake['n']:,} results (ResultSet, future, rows) alive until the end, and the full "
            "collections that this triggers cost the driver and rxcql alike, a few µs per "
            "statement. The streaming modes keep nothing.",
            "",
        ]
    node = results.get("node")
    if node:
        parts += [
            "## 2. Throughput against the real node",
            "",
            f"{node['repeats']} interleaved repeats per cell; each cell: statements per second "
            "(median), its ratio to the driver's same mode, client CPU µs per statement, and of "
            "that the time in the cyclic garbage collector (µs per statement). The list modes "
            "keep every result (a ResultSet holding its ResponseFuture, about 24 tracked objects "
            "a statement) until the end, and the collector's full collections over them are the "
            "difference between the list and the streaming modes, for the driver and rxcql "
            "alike.",
            "",
            node_section(node, labels),
            "",
        ]
        if node.get("big"):
            parts += [
                "**Large run**: INSERTs from a generator through "
                "`rxcql.execute_concurrent_with_args(session, insert, generator, concurrency=100,"
                " results_generator=True)`, every result checked by the loop that reads it, run "
                "once; 1,000 random keys read back afterwards. (`--big-mode list` keeps the list "
                "of a million results instead, and then mostly measures the garbage collector.)",
                "",
                big_section(node["big"]),
                "",
            ]
    memory = results.get("memory")
    if memory:
        parts += [
            "## 3. Memory: generator mode, peak RSS growth",
            "",
            memory_section(memory["runs"]),
            "",
            memory["notes"],
            "",
        ]
    scaling = results.get("scaling")
    if scaling:
        parts += [
            "## 4. Scaling: throughput against concurrency (INSERT, list mode)",
            "",
            f"![throughput against concurrency](img/{PLOT.name})",
            "",
            f"{scaling['repeats']} interleaved repeats per point; statements per run: "
            "1,500 x concurrency, at most "
            f"{scaling['max_n']:,}.",
            "",
            scaling_section(scaling),
            "",
        ]
    bulk = results.get("bulk")
    if bulk and bulk.get("labels"):
        parts += [
            "## 5. Bulk writes: one request per row, grouped batches, the Java driver",
            "",
            f"{bulk['n']:,} rows per run (prepared `INSERT INTO kv_bulk (k, v) VALUES (?, ?)`, "
            "`k bigint PRIMARY KEY`, `v` about 12 bytes), "
            f"{bulk['repeats']} interleaved repeats; rows/s and client CPU µs/row are medians, "
            "a ratio is the median of the paired ratios to the best `driver_list` concurrency "
            "of this run.",
            "",
            bulk_section(bulk),
            "",
            "Targets of the batched writes: "
            + "; ".join(t.removeprefix("bulk, ") for t in _batched_targets(bulk))
            + ".",
            "",
            "Client CPU is the process CPU time over the run: the Python process for the Python "
            "contenders (every thread, as in part 2), the JVM for the Java driver "
            "(`OperatingSystemMXBean.getProcessCpuTime()`, every JVM thread: JIT compiler and "
            "garbage collector included). The Java loader (`bench/java/Loader.java`, "
            "java-driver-core from Maven Central, run by Java 17's source launcher) runs in a "
            "fresh JVM each time; its JVM start, source compilation, connection and a warm-up "
            f"pass of {bulk.get('java_warmup', 0):,} rows (other keys, same kind of rows, same "
            "mode and requests in flight) are excluded: the figures are the timed pass after "
            "them, measured by the loader itself. The batched rxcql contenders run at "
            f"concurrency {bulk.get('batch_concurrency')} (requests in flight; a batch is one "
            'request). Every row of `kv_bulk` is a partition of its own, so `batch="partition"` '
            "finds nothing to group here and sends one request per row (at that concurrency): "
            "its rows show what the grouping stage costs when it cannot help; "
            '`batch="replica"` groups rows by replica set (one node: all of them). '
            "Every run is checked: the Python contenders' results as in part 2 (a "
            "batch's result is shared by its rows), the Java loader's count of failed requests, "
            f"for every contender the table: a random sample of {bulk.get('spot_check', 0):,} keys "
            "is deleted before the run and read back after it, every row holding its value.",
            "",
        ]
    adaptive = results.get("adaptive")
    if adaptive and adaptive.get("workloads"):
        parts += [adaptive_section(adaptive, meta), ""]
    cli = results.get("cli")
    if cli and cli.get("samples"):
        parts += [
            "## 7. The rxcql command against cqlsh COPY",
            "",
            cli_section(cli),
            "",
            "See [the command line page](cli.md) and `bench/command.py` for the method.",
            "",
        ]
    parts += [METHOD, meta["commands"], ""]
    return "\n".join(parts)


def write_docs(text: str, path: Path = DOCS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
