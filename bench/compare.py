"""The fake-session costs of two commits, interleaved: ``python -m bench.compare OLD [--rounds N]``.

A refactor must not make the engine slower. This checks ``OLD`` out into a temporary git
worktree and alternates ``python -m bench --only fake --repeats 1`` between that tree and this
checkout (old, new, old, new, ...), so that a noisy stretch of the machine hits both alike; then
it prints, for every contender, the median CPU time per statement of each side and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_fake(tree: Path, out: Path, n: int, contenders: str | None) -> dict[str, list[float]]:
    """One ``--only fake --repeats 1`` run with ``tree``'s rxcql and bench: CPU s/statement."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "bench", "--only", "fake", "--repeats", "1"]
    command += ["--fake-n", str(n), "--json", str(out)]
    if contenders:
        command += ["--contenders", contenders]
    subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    samples = json.loads(out.read_text())["fake"]["samples"]
    return {name: [cpu / s["n"] for cpu in s["cpu"]] for name, s in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the commit to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved pairs (default 5)")
    parser.add_argument("--fake-n", type=int, default=100_000, help="statements per run")
    parser.add_argument("--contenders", help="comma-separated contender keys (default all)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rxcql-compare-") as scratch:
        old_tree = Path(scratch) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old_tree), args.old],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        try:
            costs: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
            for round_ in range(args.rounds):
                for side, tree in (("old", old_tree), ("new", ROOT)):
                    out = Path(scratch) / f"{side}-{round_}.json"
                    for name, values in run_fake(tree, out, args.fake_n, args.contenders).items():
                        costs[side].setdefault(name, []).extend(values)
                print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT)

    print(f"fake session, {args.fake_n:,} statements, {args.rounds} interleaved rounds")
    print(f"{'contender':<18} {'old us/stmt':>12} {'new us/stmt':>12} {'new/old':>8}")
    for name in costs["new"]:
        if name not in costs["old"]:
            continue
        old = statistics.median(costs["old"][name]) * 1e6
        new = statistics.median(costs["new"][name]) * 1e6
        print(f"{name:<18} {old:>12.2f} {new:>12.2f} {new / old:>7.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
