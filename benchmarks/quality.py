"""What the quality checks cost next to the stages they check, on the pipeline's own path.

    .venv/bin/python benchmarks/quality.py                          # batches of 100, 1,000 and 10,000 articles
    .venv/bin/python benchmarks/quality.py --sizes 100 1000 --passes 3

For each size, one batch of generated news pages (varied English prose; every 10th page a syndicated
copy of another site's page, every 50th a page without text) is served over real HTTP by a separate
process, 7 sites on their own 127.0.0.1 ports, and goes through the stages as `ingest-news` runs them,
inside a Prefect flow on a temporary Prefect server, into a fresh SQLite warehouse:

    fetch   fetch_task per source, submitted together (host delay 0: the fastest a fetch can be, so the
            fetch ratio is a worst case; real runs wait NEWSFLOW_HOST_DELAY_SECONDS between a host's pages)
    clean   CleanRunner (a batch mapped over its chunks, one per worker)
    dedupe  dedupe_task (against the warehouse)
    load    load_task

and after each stage its quality gate, the very function the flow calls (gate_fetched, gate_cleaned,
gate_deduplicated, gate_warehouse): frames, Great Expectations, quarantine,
dq_results written. A pass is a run: its context (suites, data sources) is built once, before the
stages, and shown apart with the Data Docs build (once per run) and the import of Great Expectations
(once per process). Target: checks under a tenth of their stage for 1,000 articles and more.
Each figure is the best of `--passes`; on a shared machine figures are noisy, ratios of one pass less so,
and the CPU seconds of the flow's thread (shown for the stages that run on it) least of all.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The clean stage's process pool unpickles the flow by reference: this file must be importable there.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), str(HERE), os.environ.get("PYTHONPATH")) if p)
sys.path[:0] = [str(HERE.parent), str(HERE)]
os.environ["NEWSFLOW_HOST_DELAY_SECONDS"] = "0"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import tasks.settings  # noqa: E402,F401  (telemetry off before Prefect is imported)

# isort: split
from prefect import flow  # noqa: E402

WORDS = " ".join((
    "council harbour ferry school budget vote storm repair bridge island fishing quota festival library",
    "hospital housing plan residents said monday money spent three years after long debate roads rail",
    "buses future local shops families lived generations mayor told reporters town hall meeting work",
    "begin spring despite concerns raised traders fear higher rents parking charges fewer visitors",
    "summer months tourists fill cafes hotels beaches campsites coast",
)).split(" ")
SITES = 7
STAGES = ("fetch", "clean", "dedupe", "load")
# Stages whose work runs on the flow's own thread, as their checks do: their CPU seconds compare directly
# (fetch runs in task threads and clean in worker processes, so only their wall seconds compare).
ON_FLOW_THREAD = ("dedupe", "load")


def page(number: int) -> bytes:
    """Page `number`: its own prose, a copy of page number-5's (every 10th), or no text (every 50th)."""
    if number % 50 == 7:
        return b"<html><body><nav><a href='/'>Home</a></nav><footer>(c) Example</footer></body></html>"
    rng = random.Random(number - 5 if number % 10 == 9 else number)
    paragraphs = []
    for _ in range(rng.randint(4, 9)):
        paragraphs.append(" ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize()
                                   + "." for _ in range(rng.randint(3, 6))))
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<html><head><title>Story {number}</title><meta property='article:published_time' "
            f"content='2026-11-{1 + number % 20:02d}T08:00:00Z'></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>Story {number}</h1>{body}</article><footer>Contact us</footer></body></html>"
            ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        name = self.path.strip("/")
        body, status = (page(int(name)), 200) if name.isdigit() else (b"", 404)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(pipe) -> None:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(SITES)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    pipe.send([s.server_address[1] for s in servers])
    pipe.recv()  # "stop"


@flow(name="quality-benchmark")
def measure(size: int, ports: list[int], workdir: Path) -> dict[str, float]:
    """One run over one batch of `size` pages: seconds of each stage and of its checks."""
    from flows.checks import gate_cleaned, gate_deduplicated, gate_fetched, gate_warehouse
    from flows.ledger import Ledger
    from flows.pipeline import PIPELINE, stage_names
    from flows.run_checks import RunChecks
    from flows.scale import CleanRunner, merge_clean_outcomes
    from flows.stages import data_docs_task, dedupe_task, fetch_task, load_task
    from tasks.clean import CleanOutcome
    from tasks.settings import get_settings
    from tasks.sources import UrlsSource
    from tasks.warehouse import get_engine, start_run

    settings = get_settings().model_copy(update={
        "warehouse_url": f"sqlite:///{workdir / f'warehouse-{size}-{uuid.uuid4().hex[:8]}.db'}",
        "max_items_per_source": size, "batch_size": size, "fetch_task_pages": size})  # one task per site
    run_id = str(uuid.uuid4())
    start_run(get_engine(settings.warehouse_url), run_id)
    checks, ledger = RunChecks(settings, run_id), Ledger(stage_names(PIPELINE))
    figures: dict[str, float] = {}

    def timed(name: str, function, *args):
        started, cpu = time.perf_counter(), time.thread_time()
        result = function(*args)
        figures[name] = time.perf_counter() - started
        figures[f"{name} cpu"] = time.thread_time() - cpu  # this thread's CPU: what other tenants do not skew
        return result

    timed("context", checks.validator)  # once per run
    specs = [UrlsSource(name=f"site-{k}", kind="urls", allow_private_network=True,
                        urls=[f"http://127.0.0.1:{port}/{n}" for n in range(k, size, SITES)])
             for k, port in enumerate(ports)]
    kinds = {s.name: s.kind for s in specs}

    outcomes = timed("fetch", lambda: [f.result() for f in [fetch_task.submit(s, settings) for s in specs]])
    documents = timed("fetch checks", gate_fetched, outcomes, kinds, checks, ledger)

    def clean() -> CleanOutcome:
        with CleanRunner(settings) as cleaner:
            return merge_clean_outcomes([f.result() for f in cleaner.submit(documents, "batch 1")])

    cleaned = timed("clean", clean)
    articles, _ = timed("clean checks", gate_cleaned, cleaned, checks, "batch 1", ledger)
    deduped = timed("dedupe", dedupe_task, articles, settings, "batch 1")
    valid, _ = timed("dedupe checks", gate_deduplicated, deduped, checks, "batch 1", ledger)
    loaded = timed("load", load_task, dataclasses.replace(deduped, kept=valid), settings, run_id, "batch 1")
    ledger.loaded_urls.update(loaded.article_ids)
    ledger.duplicates += loaded.stats.counts["duplicates"]
    timed("load checks", gate_warehouse, checks, ledger)
    timed("data docs", data_docs_task, checks)  # once per run
    checks.close()
    figures.update(pages=size, documents=len(documents), articles=len(cleaned.articles),
                   rejected=len(cleaned.rejections), duplicates=len(deduped.duplicates),
                   loaded=loaded.stats.passed_on, quarantined=ledger.quarantined_total,
                   failures=len(ledger.failures))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--passes", type=int, default=2, help="runs per size; each figure is the best")
    args = parser.parse_args()

    pipe, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child,), daemon=True)
    server.start()
    ports = pipe.recv()
    started = time.perf_counter()
    import great_expectations  # noqa: F401

    gx_import = time.perf_counter() - started
    import quality as bench  # this file as a module, not __main__ (see PYTHONPATH above)
    from prefect.testing.utilities import prefect_test_harness

    best: dict[int, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
            for size in args.sizes:
                for _ in range(args.passes):
                    figures = bench.measure(size, ports, Path(tmp))
                    mine = best.setdefault(size, figures)
                    for key, value in figures.items():
                        mine[key] = min(mine[key], value)
                    print(f"  pass, {size} pages: " + ", ".join(
                        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()),
                        file=sys.stderr, flush=True)
    finally:
        pipe.send("stop")
        server.join(timeout=5)

    print(f"import of Great Expectations: {gx_import:.2f} s (once per process)\n")
    print(f"{'pages':>7} {'stage':>7} {'stage s':>9} {'checks s':>9} {'ratio':>7}   "
          f"{'stage CPU s':>11} {'checks CPU s':>12} {'CPU ratio':>9}")
    for size, figures in best.items():
        for stage in STAGES:
            seconds, checks = figures[stage], figures[f"{stage} checks"]
            line = f"{size:>7} {stage:>7} {seconds:>9.3f} {checks:>9.3f} {checks / seconds:>7.3f}"
            if stage in ON_FLOW_THREAD:
                cpu, checks_cpu = figures[f"{stage} cpu"], figures[f"{stage} checks cpu"]
                line += f"   {cpu:>11.3f} {checks_cpu:>12.3f} {checks_cpu / cpu:>9.3f}"
            print(line)
        stages = sum(figures[s] for s in STAGES)
        checks = sum(figures[f"{s} checks"] for s in STAGES) + figures["context"] + figures["data docs"]
        print(f"{size:>7} {'run':>7} {stages:>9.3f} {checks:>9.3f} {checks / stages:>7.3f}"
              f"   (checks + context {figures['context']:.2f} s + Data Docs {figures['data docs']:.2f} s)")
        print(f"{'':>7} ({int(figures['documents'])} documents, {int(figures['articles'])} articles, "
              f"{int(figures['rejected'])} without text, {int(figures['duplicates'])} duplicates, "
              f"{int(figures['loaded'])} loaded, {int(figures['quarantined'])} quarantined, "
              f"{int(figures['failures'])} sources failed)")


if __name__ == "__main__":
    main()
