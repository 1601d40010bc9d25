"""Where cleaning runs: the same `newsflow ingest` over a generated corpus of HTML pages read from disk
(so that fetching costs nothing and cleaning dominates), three ways:

- one worker: NEWSFLOW_CPU_WORKERS=1, every batch cleaned by one warm cleaning process;
- process pool: the default, chunks of NEWSFLOW_CPU_CHUNK_SIZE documents on one warm process per core;
- Dask: a local Dask cluster of two worker processes (NEWSFLOW_DASK_ADDRESS).

    .venv/bin/python benchmarks/scale.py               # 400 pages
    .venv/bin/python benchmarks/scale.py --pages 1000
    .venv/bin/python benchmarks/scale.py --pages 20 --only process    # one configuration

Prints one JSON line per configuration: wall seconds of the whole run, pages/s, articles loaded, and the
summed run time of the clean task runs (in parallel configurations that sum exceeds the wall time the
stage took). All three must load the same number of articles.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from corpus import write_corpus  # noqa: E402
from pipeline import free_port, run_measured, task_runs, wait_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--only", action="append", choices=["one", "process", "dask"],
                        help="run only this configuration (repeatable; default: all three)")
    args = parser.parse_args()
    chosen = set(args.only or ["one", "process", "dask"])

    import subprocess

    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="newsflow-scale-") as tmp:
        workdir = Path(tmp)
        write_corpus(args.pages, workdir / "corpus", hosts=5, port=free_port())
        sources = workdir / "sources.yaml"
        sources.write_text("sources:\n  - {name: corpus, kind: files, path: 'corpus/*/articles/*.html', "
                           "max_items: 1000000}\n", encoding="utf-8")
        port = free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(workdir / "prefect"),
               "NEWSFLOW_MAX_ITEMS_PER_SOURCE": "1000000"}
        server = subprocess.Popen([sys.executable, "-m", "flows.prefect_server", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=HERE.parent)
        try:
            wait_for(f"{api_url}/health")
            dask = "dask" in chosen
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) if dask \
                    else contextlib.nullcontext() as cluster:
                configurations = {
                    "one worker": {"NEWSFLOW_CPU_WORKERS": "1"},
                    "process pool": {},
                    "dask (2 workers)": {"NEWSFLOW_DASK_ADDRESS": cluster.scheduler_address} if dask else {},
                }
                configurations = {name: extra for name, extra in configurations.items() if name.split()[0] in chosen}
                for name, extra in configurations.items():
                    warehouse = workdir / f"{name.split()[0]}.db"
                    seconds, peak, code, _, _ = run_measured(
                        [str(Path(sys.executable).parent / "newsflow"), "ingest", "--sources", str(sources),
                         "--warehouse", f"sqlite:///{warehouse}"], {**env, **extra})
                    with sqlite3.connect(warehouse) as conn:
                        flow_run_id, loaded = conn.execute(
                            "SELECT flow_run_id, load_out FROM pipeline_runs ORDER BY started_at DESC").fetchone()
                    _, stages = task_runs(api_url, flow_run_id)
                    print(json.dumps({
                        "configuration": name, "pages": args.pages, "exit": code, "seconds": round(seconds, 1),
                        "pages_per_s": round(args.pages / seconds, 2), "articles_loaded": loaded,
                        "clean_task_seconds_summed": round(stages.get("clean", 0.0), 1),
                        "peak_rss_mb": round(peak / 2**20),
                        "cores": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2),
                    }), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
