"""How long a short run takes: `newsflow ingest` of two files next to a bare one-task Prefect flow, each
started the same way (a fresh process, Prefect's temporary local server, one PREFECT_HOME), best of N
interleaved rounds. The ratio is the project's own fixed cost on a run with almost nothing to do
(target: at most 1.2).

    .venv/bin/python benchmarks/startup.py                 # 2 files, best of 3
    .venv/bin/python benchmarks/startup.py --files 1 --rounds 1 --no-warm-up   # a smoke run
    .venv/bin/python benchmarks/startup.py --checkout ../other    # another checkout's code
    .venv/bin/python benchmarks/startup.py --baseline ../before   # before/after, in the same rounds

Prints both times, the ratio, and the load average (figures measured under load are not the idle ones).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((PROJECT_ROOT / "samples" / "texts").glob("*.txt"))


def bare_flow() -> None:
    """The reference: one flow, one task, nothing else."""
    from prefect import flow, task

    @task
    def one() -> int:
        return 1

    @flow(name="bare")
    def bare() -> int:
        return one()

    bare()


def write_inbox(directory: Path, count: int) -> str:
    """`count` text files (the sample texts, then variants of them); their glob."""
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        sample = SAMPLES[number % len(SAMPLES)]
        text = sample.read_text(encoding="utf-8")
        if number >= len(SAMPLES):  # a different text: not a copy the dedupe stage would drop
            text = text.replace("\n\n", f"\n\nUpdate {number}: the report was revised on day {number}.\n\n", 1)
        (directory / f"{number:04d}-{sample.name}").write_text(text, encoding="utf-8")
    return str(directory / "*.txt")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str], cwd: Path = PROJECT_ROOT) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the whole process tree (the temporary server and the cleaning
    processes are waited for, so theirs count): on a shared machine the other tenants stretch the first,
    hardly the second."""
    cpu, started = children_cpu(), time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return elapsed, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2, help="text files the ingest reads (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each, best kept (default 3)")
    parser.add_argument("--checkout", type=Path, default=PROJECT_ROOT,
                        help="the checkout whose `newsflow ingest` is timed (default: this one)")
    parser.add_argument("--baseline", type=Path,
                        help="also time this checkout's `newsflow ingest` in each round (before/after, interleaved)")
    parser.add_argument("--startup-timeout", type=int, default=120,
                        help="seconds Prefect's temporary server may take to start (more on a loaded machine)")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="skip the uncounted first runs (a smoke run: the figures then include first-run costs)")
    parser.add_argument("--bare-flow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_flow:
        bare_flow()
        return

    work = Path(tempfile.mkdtemp(prefix="newsflow-startup-"))
    try:
        files = write_inbox(work / "inbox", args.files)
        env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "DO_NOT_TRACK": "1",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "GX_ANALYTICS_ENABLED": "false",
               "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(args.startup_timeout),
               "NEWSFLOW_DATA_DIR": str(work / "data")}
        env.pop("PREFECT_API_URL", None)  # both start Prefect's temporary server, as a first command does
        newsflow = [sys.executable, "-m", "flows.cli"]  # the checkout's code (run from it), as `newsflow` runs it
        checkout = args.checkout.resolve()
        bare = [sys.executable, str(Path(__file__).resolve()), "--bare-flow"]

        def ingest(number: int) -> list[str]:  # a fresh warehouse each time: a first run of the files
            return [*newsflow, "ingest", "--files", files, "--warehouse", f"sqlite:///{work / f'w{number}.db'}"]

        checkouts = {"ingest": checkout}
        if args.baseline:
            checkouts = {"baseline ingest": args.baseline.resolve(), **checkouts}
        for name, path in checkouts.items():
            print(f"{name}: checkout {path}", flush=True)
        print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
        if args.warm_up:  # not counted: creates the Prefect database, fills the OS's caches
            timed(bare, env)
            for path in checkouts.values():
                timed(ingest(0), env, path)
        times: dict[str, list[tuple[float, float]]] = {"bare flow": [], **{name: [] for name in checkouts}}
        made = 0
        for number in range(1, args.rounds + 1):
            times["bare flow"].append(timed(bare, env))
            for name, path in checkouts.items():
                made += 1
                times[name].append(timed(ingest(made), env, path))
            print(f"round {number}: " + ", ".join(f"{name} {wall:.2f} s ({cpu:.2f} CPU s)" for name, (wall, cpu)
                                                in ((name, runs[-1]) for name, runs in times.items())), flush=True)
        best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in times.items()}
        print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print(f"bare one-task flow: {best['bare flow'][0]:.2f} s, {best['bare flow'][1]:.2f} CPU s "
              f"(best of {args.rounds})")
        for name in checkouts:
            print(f"{name} of {args.files} files: {best[name][0]:.2f} s, {best[name][1]:.2f} CPU s "
                  f"(best of {args.rounds})")
            print(f"{name} ratio: {best[name][0] / best['bare flow'][0]:.2f} of the wall time (target: at most "
                  f"1.20), {best[name][1] / best['bare flow'][1]:.2f} of the CPU time")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
