"""Hostile inputs and slow servers against the installed `newsflow` command: what each attack costs.

    .venv/bin/python benchmarks/hostile.py                # the full attacks, a few minutes
    .venv/bin/python benchmarks/hostile.py --size tiny    # a smoke run: small files, short stalls

Each attack is a real `newsflow ingest` (or a few, for the budget) in its own folder and SQLite warehouse,
sharing one Prefect server started here. Printed per attack: the exit code, the seconds, the peak RSS of the
`newsflow` process (sampled every 50 ms; the cleaning processes and the Prefect server are not counted),
and the rows its run left: articles loaded, records quarantined, items deferred to the next runs, and
fetches refused or timed out. The load average is printed with the figures: they mean little without it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
NEWSFLOW = Path(sys.executable).parent / "newsflow"
WORDS = ["harbour", "council", "budget", "ferry", "storm", "bridge", "festival", "library", "school", "hospital",
         "river", "market", "station", "museum", "tower", "garden", "theatre", "mayor", "minister", "engineer",
         "teacher", "nurse", "farmer", "repair", "approve", "delay", "open", "close", "morning", "evening", "winter",
         "summer", "green", "quiet", "early", "late", "local", "national", "public", "annual"]

SIZES = {  # what each attack is made of, at full size and for a smoke run
    "full": {"files": 1200, "budget": 500, "runs": 3, "huge_file": 3_000_000_000, "huge_line": 200_000_000,
             "huge_record": 100_000_000, "trickle": 2.0, "request_timeout": 10.0},
    "tiny": {"files": 24, "budget": 10, "runs": 3, "huge_file": 50_000_000, "huge_line": 20_000_000,
             "huge_record": 10_000_000, "trickle": 0.5, "request_timeout": 2.0},
}


REFUSED_BEFORE_PREFECT = {"yaml-bomb", "no-folder"}  # attacks the command refuses before any flow runs


@dataclass
class Attack:
    key: str  # for --only
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 1
    terminate_when: Callable[[], bool] | None = None  # SIGTERM the first run once this is true
    then_argv: list[str] | None = None  # the arguments of the runs after the first
    warehouse: str | None = None  # instead of a SQLite file in the attack's folder
    report: Callable[[Path], str] | None = None  # a note from the attack's warehouse


@dataclass
class Result:
    attack: str
    exit_code: int
    seconds: float
    peak_rss_mb: float
    loaded: int | None = None
    quarantined: int | None = None
    deferred: int | None = None
    refused: int | None = None
    note: str = ""


def story(seed: int) -> str:
    rng = random.Random(seed)
    return f"Story {seed}. " + " ".join(rng.choice(WORDS) for _ in range(70)) + "."


def page(seed: int) -> bytes:
    """An article page the cleaning keeps."""
    sentences = story(seed).split(". ")
    return (f"<!doctype html><html lang='en'><head><title>Story {seed}</title></head><body><article>"
            f"<h1>Story {seed}</h1>{''.join(f'<p>{s}.</p>' for s in sentences)}<p>{story(seed + 1000)}</p>"
            "</article></body></html>").encode()


# --- a slow server -----------------------------------------------------------------------------


class SlowServer:
    """`/headers`: the status line, then a header byte every `trickle` seconds; `/body`: headers at once,
    then a body byte every `trickle` seconds (each byte well inside any read timeout)."""

    def __init__(self, trickle: float) -> None:
        self.hits: dict[str, int] = {}
        slow = self
        body = f"<html><head><title>Slow</title></head><body><p>{story(1)}</p></body></html>".encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                slow.hits[self.path] = slow.hits.get(self.path, 0) + 1
                try:
                    if self.path == "/robots.txt":
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"x" * 200
                            + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
                    slow_headers = self.path in ("/headers", "/held")
                    self.wfile.write(head[:17] if slow_headers else head)
                    self.wfile.flush()
                    for byte in (head[17:] + body) if slow_headers else body:
                        time.sleep(trickle)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- the attacks ---------------------------------------------------------------------------------


def _sources(folder: Path, entries: list[dict]) -> str:
    path = folder / "sources.yaml"
    path.write_text("sources:\n" + "".join(f"  - {json.dumps(e)}\n" for e in entries))
    return str(path)


def _warc(path: Path, bodies: list[tuple[str, bytes]]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        for url, body in bodies:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=headers))


def build_attacks(work: Path, size: dict, slow: SlowServer) -> list[tuple[Attack, Path]]:
    """(attack, its folder) for each attack, its files written."""
    attacks: list[tuple[Attack, Path]] = []

    def folder(name: str) -> Path:
        path = work / name
        path.mkdir()
        return path

    here = folder("budget")
    (here / "texts").mkdir()
    for n in range(size["files"]):
        (here / "texts" / f"{n:05}.txt").write_text(story(n))
    attacks.append((Attack("budget", f"{size['files']} files, budget {size['budget']}", [
        "--sources", _sources(here, [{"name": "folder", "kind": "files", "path": "texts/*.txt",
                                      "max_items": size["budget"]}])], runs=size["runs"]), here))

    here = folder("yaml-bomb")
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    (here / "sources.yaml").write_text("\n".join([*lines, "sources: *a8"]) + "\n")
    attacks.append((Attack("yaml-bomb", "YAML alias bomb (445 bytes)", ["--sources", str(here / "sources.yaml")]),
                    here))

    for path, what in (("/headers", "headers"), ("/body", "body")):
        here = folder(f"trickle-{what}")
        attacks.append((Attack(f"trickle-{what}", f"{what} trickled, a byte per {size['trickle']:g} s", [
            "--sources", _sources(here, [{"name": "slow", "kind": "urls", "urls": [slow.base + path],
                                          "allow_private_network": True}])],
            env={"NEWSFLOW_REQUEST_TIMEOUT": str(size["request_timeout"]), "NEWSFLOW_MAX_RETRIES": "0"}), here))

    here = folder("huge-file")
    with (here / "huge.txt").open("wb") as stream:
        stream.truncate(size["huge_file"])  # sparse: no disk used
    (here / "small.txt").write_text(story(7))
    attacks.append((Attack("huge-file", f"a {size['huge_file'] / 1e9:g} GB file", [
        "--sources", _sources(here, [{"name": "files", "kind": "files", "path": "*.txt"}])]), here))

    here = folder("huge-line")
    with (here / "records.jsonl").open("w") as stream:
        stream.write(json.dumps({"text": story(8)}) + "\n")
        stream.write('{"text": "' + "x" * size["huge_line"] + '"}\n')
        stream.write(json.dumps({"text": story(9)}) + "\n")
    attacks.append((Attack("huge-line", f"a {size['huge_line'] / 1e6:g} MB JSON Lines line", [
        "--sources", _sources(here, [{"name": "lines", "kind": "files", "path": "*.jsonl"}])]), here))

    here = folder("huge-record")
    _warc(here / "big.warc.gz", [("https://warc.example/big", b"<p>" + b"x" * size["huge_record"] + b"</p>"),
                                 ("https://warc.example/small", page(10))])
    attacks.append((Attack("huge-record", f"a {size['huge_record'] / 1e6:g} MB WARC record", [
        "--sources", _sources(here, [{"name": "warc", "kind": "warc", "path": "*.warc.gz"}])]), here))

    here = folder("escape")
    (here / "inside.txt").write_text(story(11))
    (here / "link.txt").symlink_to("/etc/hostname")
    escape = os.path.relpath("/etc", here) + "/host*"
    attacks.append((Attack("escape", "paths out: ../../etc/host*, a symlink", [
        "--sources", _sources(here, [{"name": "dotdot", "kind": "files", "path": escape},
                                     {"name": "links", "kind": "files", "path": "*.txt"}])]), here))

    here = folder("title")
    (here / "page.html").write_bytes(page(12).replace(b"<h1>", b"<h1><script>document.location='//evil'</script>"))
    attacks.append((Attack("title", "a <script> inside the <h1>", ["--sources", _sources(
        here, [{"name": "page", "kind": "files", "path": "*.html"}])], report=_titles), here))

    here = folder("garbled")
    text = story(13) + " " + story(14)
    (here / "garbled.txt").write_text(text[:200] + "\ufffd" * (len(text) // 5) + text[200:])
    (here / "fine.txt").write_text(story(15) + " " + story(16))
    attacks.append((Attack("garbled", "a text 20% undecodable bytes", ["--sources", _sources(
        here, [{"name": "texts", "kind": "files", "path": "*.txt"}])]), here))

    here = folder("no-folder")
    attacks.append((Attack("no-folder", "sqlite:////nonexistent/dir/w.db", ["--files", str(here / "*.txt")],
                           warehouse="sqlite:////nonexistent/dir/w.db"), here))

    here = folder("sigterm")
    (here / "a.txt").write_text(story(17) + " " + story(18))
    marker = here / "warehouse.db"
    attacks.append((Attack("sigterm", "SIGTERM mid-run, then a run", [
        "--url", slow.base + "/held", "--allow-private-network"], runs=2,
        env={"NEWSFLOW_REQUEST_TIMEOUT": "600", "NEWSFLOW_READ_TIMEOUT": "60", "NEWSFLOW_MAX_RETRIES": "0",
             "PREFECT_API_URL": "", "PREFECT_HOME": str(work / "prefect-sigterm")},
        terminate_when=lambda: slow.hits.get("/held", 0) > 0 and marker.exists(),
        then_argv=["--files", str(here / "a.txt")], report=_crashed), here))
    return attacks


def _titles(warehouse: Path) -> str:
    with sqlite3.connect(warehouse) as conn:
        return "titles: " + "; ".join(repr(t) for (t,) in conn.execute("SELECT title FROM articles"))


def _crashed(warehouse: Path) -> str:
    with sqlite3.connect(warehouse) as conn:
        crashed = conn.execute("SELECT count(*) FROM pipeline_runs WHERE status = 'crashed'").fetchone()[0]
    return f"runs marked crashed: {crashed}"


# --- running ---------------------------------------------------------------------------------


def _peak_rss(process: subprocess.Popen, timeout: float,
              terminate_when: Callable[[], bool] | None) -> tuple[int, float, list[psutil.Process]]:
    """Wait for the process, sampling its RSS; (exit code, peak RSS in MB, its children when terminated)."""
    peak, started, children = 0, time.monotonic(), []
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, watched.memory_info().rss)
        if terminate_when is not None and terminate_when():
            with contextlib.suppress(psutil.Error):
                children = watched.children(recursive=True)
            process.send_signal(signal.SIGTERM)
            terminate_when = None
        if time.monotonic() - started > timeout:
            process.kill()
        time.sleep(0.05)
    return process.returncode, peak / 1e6, children


def _alive(processes: list[psutil.Process]) -> int:
    time.sleep(1)
    return sum(1 for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE)


def _rows(warehouse: Path) -> dict[str, int]:
    if not warehouse.exists():
        return {}
    try:
        with sqlite3.connect(warehouse) as conn:
            run = conn.execute("SELECT run_id, load_out, quarantined, deferred FROM pipeline_runs "
                               "ORDER BY started_at DESC LIMIT 1").fetchone()
            if run is None:
                return {}
            refused = conn.execute("SELECT count(*) FROM fetches WHERE run_id = ? AND error_kind IN "
                                   "('outside_roots', 'timeout', 'too_large')", (run[0],)).fetchone()[0]
    except sqlite3.Error:  # a run ended before its schema was made
        return {}
    return {"loaded": run[1], "quarantined": run[2], "deferred": run[3], "refused": refused}


def run_attack(attack: Attack, folder: Path, env: dict[str, str], timeout: float) -> list[Result]:
    warehouse = folder / "warehouse.db"
    results = []
    for number in range(1, attack.runs + 1):
        first = number == 1
        started = time.monotonic()
        stderr = folder.parent / f"{folder.name}-stderr-{number}.log"  # (not in the folder: globs would read it)
        run_env = {**env, **attack.env} if first or attack.then_argv is None else env
        run_env = {k: v for k, v in run_env.items() if v != ""}  # "" unsets (a temporary Prefect server)
        argv = attack.argv if first or attack.then_argv is None else attack.then_argv
        with stderr.open("w") as errors:
            process = subprocess.Popen([str(NEWSFLOW), "ingest", *argv, "--warehouse",
                                        attack.warehouse or f"sqlite:///{warehouse}"],
                                       cwd=folder, env=run_env, stdout=subprocess.DEVNULL, stderr=errors)
            code, peak, children = _peak_rss(process, timeout, attack.terminate_when if first else None)
        last = [line for line in stderr.read_text().splitlines() if line.startswith("newsflow:")]
        note = last[-1][:70] if last else ""
        if children:
            note = f"SIGTERM: {_alive(children)} of its {len(children)} child processes left running"
        elif attack.report and warehouse.exists() and number == attack.runs:
            note = attack.report(warehouse)
        name = attack.name if attack.runs == 1 else f"{attack.name} (run {number})"
        results.append(Result(name, code, time.monotonic() - started, peak, **_rows(warehouse), note=note))
    return results


def start_prefect(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    server = subprocess.Popen([sys.executable, "-m", "flows.prefect_server", "--host", "127.0.0.1", "--port",
                               str(port)], cwd=ROOT, env={**env, "PREFECT_HOME": str(work / "prefect")},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise RuntimeError("the Prefect server did not start")


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before an attack is killed")
    parser.add_argument("--keep", action="store_true", help="keep the attack folders (printed)")
    parser.add_argument("--only", metavar="KEYS", help="comma-separated attacks: budget, yaml-bomb, "
                        "trickle-headers, trickle-body, huge-file, huge-line, huge-record, escape, title, garbled, "
                        "no-folder, sigterm")
    args = parser.parse_args()
    size = SIZES[args.size]
    work = Path(tempfile.mkdtemp(prefix="newsflow-hostile-"))
    env = {**os.environ, "NEWSFLOW_HOST_DELAY_SECONDS": "0.05", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("NEWSFLOW_FILES_ROOTS", None)
    slow = SlowServer(size["trickle"])
    only = set(args.only.split(",")) if args.only else None
    attacks = [(a, f) for a, f in build_attacks(work, size, slow) if only is None or a.key in only]
    prefect = None
    if any(a.key not in REFUSED_BEFORE_PREFECT for a, _ in attacks):
        prefect, env["PREFECT_API_URL"] = start_prefect(work, env)
    results: list[Result] = []
    try:
        for attack, folder in attacks:
            print(f"... {attack.name}", file=sys.stderr, flush=True)
            results.extend(run_attack(attack, folder, env, args.timeout))
    finally:
        if prefect is not None:
            prefect.terminate()
            prefect.wait(30)
        slow.server.shutdown()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"\nhostile inputs, size {args.size}, {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" + (f", folders in {work}" if args.keep else ""))
    header = ["attack", "exit", "seconds", "peak RSS MB", "loaded", "quarantined", "deferred", "refused",
              "message"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in results:
        print(f"| {r.attack} | {r.exit_code} | {r.seconds:.1f} | {r.peak_rss_mb:.0f} | {_cell(r.loaded)} | "
              f"{_cell(r.quarantined)} | {_cell(r.deferred)} | {_cell(r.refused)} | {r.note} |")


if __name__ == "__main__":
    main()
