"""The `newsflow` command line."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tasks.settings  # first: turns telemetry off before Prefect is imported

EXIT_OK, EXIT_USAGE, EXIT_SOURCES, EXIT_WAREHOUSE, EXIT_QUALITY, EXIT_FAILED = 0, 2, 3, 4, 5, 1
EXIT_SOURCE_EMPTY = 6

# Listed by `newsflow --help` and in the README's "Exit statuses" (a test keeps the two in step).
EXIT_STATUSES = {
    EXIT_OK: "the run completed (quarantined records included)",
    EXIT_FAILED: "anything else went wrong (the one-line message says what)",
    EXIT_USAGE: "wrong command line (e.g. nothing to ingest)",
    EXIT_SOURCES: "bad sources file or sources list",
    EXIT_WAREHOUSE: "warehouse unreachable or locked (what was fetched is spooled for the next run)",
    EXIT_QUALITY: "a source (or a whole batch) failed a stage's critical checks; the others are loaded",
    EXIT_SOURCE_EMPTY: "a source yielded nothing: no file matched its path, or its feed or sitemap could not "
                       "be read; the others are loaded",
}


def _cli_kinds() -> list[Any]:
    """The source kinds `newsflow ingest` takes on its command line (see tasks.kinds)."""
    from tasks.kinds import source_kinds

    return [kind for kind in source_kinds() if kind.cli]


def _inline_sources(args: argparse.Namespace) -> list[dict[str, Any]]:
    sources: list[dict[str, Any]] = []
    for kind in _cli_kinds():
        option, values = kind.cli, getattr(args, kind.cli.flag.lstrip("-").replace("-", "_")) or []
        common = {"allow_private_network": True} if args.allow_private_network and kind.over_http else {}
        if option.one_source and values:
            sources.append({"name": option.prefix, "kind": kind.name, option.field: list(values), **common})
        elif not option.one_source:
            sources += [{"name": f"{option.prefix}-{number}", "kind": kind.name, option.field: value, **common}
                        for number, value in enumerate(values, start=1)]
    return sources


def print_summary(run_id: str, warehouse: str) -> None:
    """The run's stage table, stories and Data Docs, read from the warehouse as the run-summary artifact is."""
    from tasks.datadocs import docs_link, docs_root
    from tasks.report import deferred_line, render_stage_table, run_summary
    from tasks.warehouse import get_engine

    summary = run_summary(get_engine(warehouse), run_id)
    if summary is None:
        return
    print(f"\nrun {run_id}")
    print(render_stage_table(summary["stages"]))
    stories = summary["stories"]
    print(f"stories: {stories['new']} new, {stories['joined']} joined by new articles"
          + (f"; largest: {stories['largest'][0]['title']} ({stories['largest'][0]['articles']} articles)"
             if stories["largest"] else ""))
    if summary["deferred"]:
        load = summary["stages"][-1]
        print(deferred_line(load["passed"] + load["unchanged"], summary["deferred"], summary["deferred_sources"]))
    settings = tasks.settings.get_settings().model_copy(update={"warehouse_url": warehouse})
    index = docs_root(settings) / run_id / "index.html"
    if index.is_file():
        print(f"Data Docs: {docs_link(settings, index)}")


@contextmanager
def warehouse_parameter(url: str | None) -> Iterator[str | None]:
    """What to pass a flow as its `warehouse_url` parameter. Prefect stores flow parameters and shows them in
    its UI, so a URL with a password reaches the flow through this process's settings instead
    (NEWSFLOW_WAREHOUSE_URL, for the run only), and the parameter stays empty."""
    from sqlalchemy.engine import make_url

    try:
        has_password = bool(url) and make_url(url).password is not None
    except Exception:
        has_password = False
    if not has_password:
        yield url
        return
    names = ("NEWSFLOW_WAREHOUSE_URL", "NEWSFLOW_WAREHOUSE_SECRET")  # the URL given wins over a Secret block
    saved = {name: os.environ.get(name) for name in names}
    os.environ["NEWSFLOW_WAREHOUSE_URL"] = url
    os.environ.pop("NEWSFLOW_WAREHOUSE_SECRET", None)
    tasks.settings.get_settings.cache_clear()
    try:
        yield None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        tasks.settings.get_settings.cache_clear()


def run_ingest(sources_file: str | None, sources: list[dict[str, Any]] | None, warehouse: str | None) -> int:
    """Run the flow and print its summary; exit codes say what went wrong, with a one-line reason."""

    def run() -> dict[str, Any]:
        from flows.early import start_early
        from tasks.sources import resolve_sources
        from tasks.warehouse import get_engine

        # Fail fast on a wrong sources file, before Prefect starts; then its temporary server boots (and the
        # cleaning processes and Great Expectations' import, for local files) while the warehouse is opened
        # and the flow imported.
        with start_early(resolve_sources(sources_file, sources), tasks.settings.get_settings()) as early:
            get_engine(warehouse or tasks.settings.get_settings().warehouse_url)
            from flows.ingest import ingest_news

            early.wait_for_server()
            with warehouse_parameter(warehouse) as parameter:
                return ingest_news(sources_file=sources_file, sources=sources, warehouse_url=parameter)

    return run_and_summarise(run, warehouse or tasks.settings.get_settings().warehouse_url)


def run_and_summarise(run: Callable[[], dict[str, Any]], warehouse: str) -> int:
    """Run a flow and print its summary; exit codes say what went wrong, with a one-line reason."""
    from tasks.sources import SourcesError, SourceUnavailable
    from tasks.validate import StageFailed
    from tasks.warehouse import WarehouseError

    try:
        summary = run()
    except SourcesError as exc:
        print(f"newsflow: bad sources: {exc}", file=sys.stderr)
        return EXIT_SOURCES
    except WarehouseError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return EXIT_WAREHOUSE
    except SourceUnavailable as exc:
        print(f"newsflow: run failed: {exc}", file=sys.stderr)
        return EXIT_SOURCE_EMPTY
    except StageFailed as exc:
        print(f"newsflow: run failed: {exc}", file=sys.stderr)
        return EXIT_QUALITY
    except Exception as exc:
        print(f"newsflow: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print_summary(summary["run_id"], warehouse)
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    inline = _inline_sources(args)
    if not args.sources and not inline:
        options = ", ".join(f"{k.cli.flag} {k.cli.metavar}" for k in _cli_kinds())
        print(f"newsflow: nothing to ingest: give --sources FILE or {options}", file=sys.stderr)
        return EXIT_USAGE
    _allow_given_folders([*(args.files or []), *(args.warc or [])])
    return run_ingest(args.sources, inline or None, args.warehouse)


def _allow_given_folders(patterns: list[str]) -> None:
    """Files named on the command line are the operator's own: their folders may be read in this run (a
    flow parameter or a Prefect Variable only reaches the working directory and NEWSFLOW_FILES_ROOTS)."""
    from tasks.localfiles import pattern_base

    if patterns:
        roots = [os.environ.get("NEWSFLOW_FILES_ROOTS", ""), *(str(pattern_base(p).resolve()) for p in patterns)]
        os.environ["NEWSFLOW_FILES_ROOTS"] = os.pathsep.join(filter(None, roots))
        tasks.settings.get_settings.cache_clear()


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the bundled sample site on 127.0.0.1, ingest it, and show what landed in the warehouse."""
    from flows.sample_site import SampleSite
    from tasks.settings import PROJECT_ROOT, get_settings

    # The sample site is ours and local: no need for the 1 s politeness delay between its pages.
    os.environ.setdefault("NEWSFLOW_HOST_DELAY_SECONDS", "0.05")
    warehouse = args.warehouse or get_settings().warehouse_url
    with SampleSite() as site:
        os.environ["NEWSFLOW_SAMPLE_BASE_URL"] = site.base_url
        print(f"serving the sample news site at {site.base_url}")
        status = run_ingest(str(PROJECT_ROOT / "samples" / "sources.yaml"), None, warehouse)
    if status == EXIT_OK:
        show_warehouse(warehouse)
    return status


def cmd_reprocess(args: argparse.Namespace) -> int:
    """Clean -> load again from the raw store, without fetching."""
    from datetime import datetime

    from flows.reprocess import reprocess_news

    try:
        since = datetime.fromisoformat(args.since) if args.since else None
    except ValueError:
        print(f"newsflow: --since {args.since!r} is not an ISO date or time", file=sys.stderr)
        return EXIT_USAGE
    def run() -> dict[str, Any]:
        from tasks.warehouse import get_engine

        get_engine(args.warehouse or tasks.settings.get_settings().warehouse_url)  # fail fast when unreachable
        with warehouse_parameter(args.warehouse) as parameter:
            return reprocess_news(sources=args.source, urls=args.url, since=since, warehouse_url=parameter,
                                  quarantined=args.quarantined, stage=args.stage)

    return run_and_summarise(run, args.warehouse or tasks.settings.get_settings().warehouse_url)


def show_warehouse(url: str) -> None:
    from sqlalchemy import text

    from tasks.warehouse import get_engine

    queries = {
        "articles": "SELECT id, source, substr(title, 1, 60) AS title, word_count FROM articles ORDER BY id",
        "duplicates": "SELECT d.kind, d.similarity, d.url, a.canonical_url AS duplicate_of "
                      "FROM duplicates d JOIN articles a ON a.id = d.article_id ORDER BY d.id",
        "quarantine": "SELECT stage, url, reasons FROM quarantine "
                      "WHERE run_id = (SELECT run_id FROM pipeline_runs ORDER BY started_at DESC LIMIT 1)",
    }
    with get_engine(url).connect() as conn:
        for name, query in queries.items():
            rows = conn.execute(text(query)).all()
            print(f"\n{name} ({len(rows)} rows): {query}")
            for row in rows:
                print("  " + " | ".join(str(v)[:90] for v in row))


def cmd_db(args: argparse.Namespace) -> int:
    """Migrate the warehouse schema to the newest revision, or show the revision it is at."""
    from tasks import migrate
    from tasks.settings import get_settings
    from tasks.warehouse import WarehouseError, safe_url

    url = args.warehouse or get_settings().warehouse_url
    try:
        if args.db_command == "upgrade":
            before = migrate.current(url)
            after = migrate.upgrade(url, args.revision)
            print(f"{safe_url(url)}: {', '.join(before) or '(empty)'} -> {', '.join(after)}")
        else:
            revisions = migrate.current(url)
            heads = migrate.heads()
            state = "up to date" if set(revisions) == set(heads) else f"behind: head is {', '.join(heads)}"
            print(f"{safe_url(url)}: {', '.join(revisions) or '(not migrated)'} ({state})")
    except WarehouseError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return EXIT_WAREHOUSE
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    """Full-text search over the warehouse's article titles and texts, best matches first."""
    from tasks.search import search
    from tasks.settings import get_settings
    from tasks.warehouse import WarehouseError, get_engine

    try:
        hits = search(get_engine(args.warehouse or get_settings().warehouse_url), args.query, args.limit)
    except WarehouseError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return EXIT_WAREHOUSE
    if not hits:
        print(f"no article matches {args.query!r}")
    for hit in hits:
        published = hit.published_at.date().isoformat() if hit.published_at else "undated"
        print(f"{hit.score:7.3f}  {hit.title or '(untitled)'}  [{hit.source}, {published}, id {hit.id}]")
        print(f"         {hit.url}")
        print(f"         {' '.join(hit.snippet.split())}")
    return EXIT_OK


def _data_dir(args: argparse.Namespace) -> Path:
    from tasks.settings import get_settings

    return Path(args.data_dir) if args.data_dir else get_settings().data_dir


def cmd_up(args: argparse.Namespace) -> int:
    """Prefect server + UI, work pool, deployments and a worker on this machine."""
    from flows.ops import OpsError, up
    from tasks.settings import get_settings

    settings = get_settings()
    try:
        stack = up(_data_dir(args), port=args.port, home=Path(args.home) if args.home else None,
                   sample_site_port=args.sample_site, alert_webhook=args.alert_webhook,
                   docs_port=args.docs_port or settings.data_docs_port, docs_dir=settings.data_docs_dir)
    except OpsError as exc:
        print(f"newsflow: up failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"\nPrefect UI: {stack.ui_url}    (worker and server logs: {_data_dir(args) / 'logs'})")
    print(f"Data Docs: {stack.docs_url}/")
    if stack.sample_site_url:
        print(f"sample news site: {stack.sample_site_url}")
    print(f"To use the Prefect CLI against it:  export PREFECT_API_URL={stack.api_url}")
    print("Stop everything with:  newsflow down")
    return EXIT_OK


def cmd_docs(args: argparse.Namespace) -> int:
    """Serve the runs' Data Docs on 127.0.0.1 until interrupted."""
    from flows.docs_server import serve_forever
    from tasks.datadocs import docs_root
    from tasks.settings import get_settings

    settings = get_settings()
    if args.warehouse:
        settings = settings.model_copy(update={"warehouse_url": args.warehouse})
    try:
        serve_forever(Path(args.dir).resolve() if args.dir else docs_root(settings),
                      args.port or settings.data_docs_port)
    except OSError as exc:  # the port is taken
        print(f"newsflow: cannot serve the Data Docs: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from flows.ops import down

    stopped = down(_data_dir(args))
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """The deployments of deployments/prefect.yaml, with their schedules, served by this one process."""
    from flows.ops import OpsError, serve

    try:
        serve(_data_dir(args), port=args.port)
    except OpsError as exc:
        print(f"newsflow: serve failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_automations(args: argparse.Namespace) -> int:
    from flows.ops import OpsError, apply_automations

    api_url = args.api_url or os.environ.get("PREFECT_API_URL")
    if not api_url:
        print("newsflow: no Prefect API: pass --api-url or set PREFECT_API_URL", file=sys.stderr)
        return EXIT_USAGE
    try:
        names = apply_automations(api_url, args.webhook)
    except (OpsError, ValueError) as exc:
        print(f"newsflow: automations failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print("automations applied: " + ", ".join(names))
    return EXIT_OK


def cmd_quality(args: argparse.Namespace) -> int:
    """Print a run's quality summary from the warehouse: the run-summary artifact, for terminals."""
    from tasks.datadocs import docs_link, docs_root
    from tasks.report import render_markdown, run_summary
    from tasks.settings import get_settings
    from tasks.warehouse import WarehouseError, get_engine

    try:
        summary = run_summary(get_engine(args.warehouse or get_settings().warehouse_url), args.run)
    except WarehouseError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return EXIT_WAREHOUSE
    if summary is None:
        print(f"newsflow: no run {args.run!r} in the warehouse" if args.run else "newsflow: no run yet",
              file=sys.stderr)
        return EXIT_USAGE
    settings = get_settings().model_copy(update={"warehouse_url": args.warehouse or get_settings().warehouse_url})
    index = docs_root(settings) / summary["run_id"] / "index.html"
    print(render_markdown(summary, docs_link(settings, index) if index.is_file() else None))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsflow", description="Fetch, clean, deduplicate, validate and load news text into a warehouse.",
        epilog="exit statuses:\n" + "\n".join(f"  {code}  {text}" for code, text in sorted(EXIT_STATUSES.items())),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="run the ingest-news flow once")
    ingest.add_argument("--sources", metavar="FILE", help="YAML sources file")
    for kind in _cli_kinds():
        ingest.add_argument(kind.cli.flag, metavar=kind.cli.metavar, action="append", help=kind.cli.help)
    ingest.add_argument("--allow-private-network", action="store_true",
                        help="let the sources given by URL reach loopback and private addresses")
    ingest.add_argument("--warehouse", metavar="URL", help="SQLAlchemy URL (default NEWSFLOW_WAREHOUSE_URL)")
    ingest.set_defaults(handler=cmd_ingest)

    demo = commands.add_parser("demo", help="ingest the bundled sample site into the warehouse")
    demo.add_argument("--warehouse", metavar="URL")
    demo.set_defaults(handler=cmd_demo)

    search = commands.add_parser("search", help="full-text search over the articles' titles and texts")
    search.add_argument("query", help='words (all must match), "a phrase", OR, -excluded')
    search.add_argument("--limit", type=int, default=10, help="at most this many articles (default 10)")
    search.add_argument("--warehouse", metavar="URL", help="SQLAlchemy URL (default NEWSFLOW_WAREHOUSE_URL)")
    search.set_defaults(handler=cmd_search)

    reprocess = commands.add_parser("reprocess", help="clean -> load again from stored raw documents, no fetch")
    reprocess.add_argument("--source", metavar="NAME", action="append", help="only this source's documents")
    reprocess.add_argument("--url", metavar="URL", action="append", help="only this document")
    reprocess.add_argument("--since", metavar="ISO", help="only documents fetched since then (e.g. 2026-11-20)")
    reprocess.add_argument("--quarantined", action="store_true",
                           help="only records held back in quarantine and not loaded since (after a fix)")
    reprocess.add_argument("--stage", choices=["fetch", "clean", "dedupe", "load"],
                           help="with --quarantined: only records held back by this stage")
    reprocess.add_argument("--warehouse", metavar="URL", help="SQLAlchemy URL (default NEWSFLOW_WAREHOUSE_URL)")
    reprocess.set_defaults(handler=cmd_reprocess)

    db = commands.add_parser("db", help="the warehouse schema: upgrade it, show its revision")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply the migrations the warehouse lacks")
    db_upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    db_current = db_commands.add_parser("current", help="show the warehouse's revision")
    for sub in (db_upgrade, db_current):
        sub.add_argument("--warehouse", metavar="URL", help="SQLAlchemy URL (default NEWSFLOW_WAREHOUSE_URL)")
        sub.set_defaults(handler=cmd_db)


    up = commands.add_parser("up", help="start a local Prefect server and UI, the work pool, the deployments "
                             "and a worker")
    up.add_argument("--port", type=int, default=4200, help="Prefect API and UI port on 127.0.0.1 (4200)")
    up.add_argument("--home", metavar="DIR", help="PREFECT_HOME of the server (default DATA_DIR/prefect)")
    up.add_argument("--data-dir", metavar="DIR", help="where the state file and logs go (NEWSFLOW_DATA_DIR)")
    up.add_argument("--sample-site", metavar="PORT", type=int,
                    help="also serve the bundled sample site on this port for samples/sources.yaml")
    up.add_argument("--alert-webhook", metavar="URL", default=os.environ.get("NEWSFLOW_ALERT_WEBHOOK_URL"),
                    help="apply deployments/automations.yaml, notifying this webhook "
                    "(default NEWSFLOW_ALERT_WEBHOOK_URL)")
    up.add_argument("--docs-port", type=int, help="Data Docs server port on 127.0.0.1 (NEWSFLOW_DATA_DOCS_PORT, 4280)")
    up.set_defaults(handler=cmd_up)

    docs = commands.add_parser("docs", help="serve the runs' Data Docs on 127.0.0.1 (the http address the "
                               "data-docs artifacts link to when NEWSFLOW_DATA_DOCS_URL is set)")
    docs.add_argument("--port", type=int, help="port (NEWSFLOW_DATA_DOCS_PORT, 4280)")
    docs.add_argument("--dir", metavar="DIR", help="the Data Docs folder (default: NEWSFLOW_DATA_DOCS_DIR, else "
                      "data-docs/ beside a SQLite warehouse, else under NEWSFLOW_DATA_DIR)")
    docs.add_argument("--warehouse", metavar="URL", help="whose Data Docs (default NEWSFLOW_WAREHOUSE_URL)")
    docs.set_defaults(handler=cmd_docs)

    down = commands.add_parser("down", help="stop what `newsflow up` started")
    down.add_argument("--data-dir", metavar="DIR")
    down.set_defaults(handler=cmd_down)

    serve = commands.add_parser("serve", help="serve the deployments and schedules of deployments/prefect.yaml "
                                "from this process (no work pool)")
    serve.add_argument("--port", type=int, default=4200,
                       help="port of the Prefect server started when PREFECT_API_URL is not set (4200)")
    serve.add_argument("--data-dir", metavar="DIR")
    serve.set_defaults(handler=cmd_serve)

    automations = commands.add_parser("automations", help="apply deployments/automations.yaml: webhook "
                                      "notifications on failed or crashed runs and on no success in 3 hours")
    automations.add_argument("--webhook", metavar="URL", required=True)
    automations.add_argument("--api-url", metavar="URL", help="Prefect API (default PREFECT_API_URL)")
    automations.set_defaults(handler=cmd_automations)

    quality = commands.add_parser("quality", help="print a run's data-quality summary from the warehouse")
    quality.add_argument("--run", metavar="RUN_ID", help="the run (default: the latest)")
    quality.add_argument("--warehouse", metavar="URL", help="SQLAlchemy URL (default NEWSFLOW_WAREHOUSE_URL)")
    quality.set_defaults(handler=cmd_quality)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


TERM_GRACE_SECONDS = 10.0  # after SIGTERM, the most newsflow waits for its work to unwind


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends newsflow as an exception would, so that what it started (the temporary Prefect server,
    the cleaning processes) is stopped on the way out; a second SIGTERM during that is ignored. (During a
    flow run Prefect's own handler does the same, raising its TerminationSignal.)"""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def _end_within_grace_of_sigterm() -> None:
    """Unwinding can wait on threads still in a request, up to their deadline: TERM_GRACE_SECONDS after a
    SIGTERM, whoever handles it, the exit handlers run (stopping the temporary Prefect server) and the
    process ends. The signal is seen through the interpreter's wakeup file descriptor, written as it
    arrives whatever the main thread is blocked on."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)

    def watch() -> None:
        while data := os.read(read, 64):
            if signal.SIGTERM in data:
                time.sleep(TERM_GRACE_SECONDS)
                _run_exit_handlers()
                os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="sigterm-grace", daemon=True).start()


DRAIN_SECONDS = 10.0  # the most the exit waits for Prefect's workers to send what they hold


def _run_exit_handlers(drain_seconds: float = DRAIN_SECONDS) -> None:
    """The exit handlers, in the order the interpreter's own exit runs them: first Prefect's log and event
    workers, which it registers for the threads' shutdown (they send what they still hold while the
    temporary server answers; at most `drain_seconds`, should the server not answer), then the `atexit`
    functions (which stop that server, then flush the logging handlers). The other way round, Prefect's
    log handler waited its 5 s timeout on a server that was gone. (The other thread-shutdown hooks join
    thread pools, which may wait on a request: not run, as before.)"""
    hooks = [hook for hook in reversed(getattr(threading, "_threading_atexits", []))  # (threading._shutdown's)
             if type(getattr(getattr(hook, "func", hook), "__self__", None)).__module__.startswith("prefect.")]

    def drain() -> None:
        for hook in hooks:
            try:
                hook()
            except Exception:  # one worker failing to drain must not keep the others from draining
                logging.getLogger(__name__).debug("exit handler failed", exc_info=True)

    if hooks:
        drainer = threading.Thread(target=drain, name="drain-prefect-workers", daemon=True)
        drainer.start()
        drainer.join(drain_seconds)
    atexit._run_exitfuncs()


def run() -> None:
    """The `newsflow` command: `main`, then a quick exit. Tearing the interpreter down frees a run's objects
    one by one (Prefect, Great Expectations, pandas: 1.6 s after a 1,000-page run, a sixth of an unchanged
    re-run), for nothing: the process ends anyway. The exit handlers still run first, in the interpreter's
    order (Prefect's logs and events while its server is up, then the server and the cleaning processes),
    and the output is flushed. An exception still ends it the usual way."""
    signal.signal(signal.SIGTERM, _terminated)
    _end_within_grace_of_sigterm()
    try:
        code = main()
    except SystemExit as exc:  # SIGTERM: the exit handlers below still stop the temporary Prefect server
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    _run_exit_handlers()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    run()

