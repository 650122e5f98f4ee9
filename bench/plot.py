"""The scaling plot (matplotlib is imported here only, when a plot is drawn)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any


def scaling_plot(part: dict[str, Any], path: Path) -> Path:
    """Throughput and client CPU per statement against concurrency, rxcql and the driver."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {"driver_list": "cassandra.concurrent", "rxcql_list": "rxcql"}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7), sharex=True)
    for key, label in series.items():
        xs, tput, cpu = [], [], []
        for point in part["points"]:
            sample = point["samples"].get(key)
            if sample is None:
                continue
            wall = statistics.median(sample["wall"])
            cpus = statistics.median(sample["cpu"])
            xs.append(point["concurrency"])
            tput.append(sample["n"] / wall)
            cpu.append(cpus / sample["n"] * 1e6)
        top.plot(xs, tput, marker="o", label=f"{label}.execute_concurrent")
        bottom.plot(xs, cpu, marker="o", label=label)
    concurrencies = [point["concurrency"] for point in part["points"]]
    top.set_xscale("log", base=2)
    top.set_xticks(concurrencies, [str(c) for c in concurrencies])
    top.set_ylabel("statements / s (INSERT)")
    top.set_title("Throughput against concurrency, one Cassandra 5.0 node on the same 2 cores")
    top.grid(True, which="both", alpha=0.3)
    top.legend()
    bottom.set_xlabel("concurrency")
    bottom.set_ylabel("client CPU µs / statement")
    bottom.grid(True, which="both", alpha=0.3)
    bottom.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
