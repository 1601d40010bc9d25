"""Every script in benchmarks/ runs: each at a tiny size, as a subprocess, must exit 0 and print its figures.

A benchmark nobody runs rots unnoticed (benchmarks/scale.py crashed on a changed return value for weeks).
No figure is judged here, only that the script gets to printing it. Scripts are discovered, so a new one fails
here until it has an entry in SMOKE. Benchmarks that score data (extraction, dedup) run on the small samples
under samples/benchmarks/, never on ../shared/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "benchmarks"

# Script -> (arguments of a run of seconds on an idle machine, a regular expression its figures match).
# "{tmp}" is a fresh temporary directory. An entry whose script is not (yet) in benchmarks/ is not used.
SMOKE: dict[str, tuple[list[str], str]] = {
    "corpus.py": (["--pages", "6", "--hosts", "2", "--out", "{tmp}/corpus"], r'"pages": 6, "hosts": 2'),
    "dedup.py": ([str(SAMPLES / "dedup.jsonl"), "--repeat", "1", "--with-sources"],
                 r"stories \(story_ids\): 13 documents.*\n.*docs/s.*\n\s+pairwise precision [\d.]+\s+recall [\d.]+"),
    "dedup_growth.py": (["--documents", "300", "--batch-size", "100", "--every", "1"],
                        r"seconds per batch, mean of the first / last tenth: [\d.]+ / [\d.]+"),
    "extraction.py": ([str(SAMPLES / "extraction"), "--rounds", "1"],
                      r"(?m)^## extraction: 3 pages.*\n.*\n^ours\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+"),
    # (The two attacks refused before any flow runs: the others each start a run, minutes in all.)
    "hostile.py": (["--size", "tiny", "--only", "yaml-bomb,no-folder"],
                   r"\| YAML alias bomb \(445 bytes\) \| 3 \| [\d.]+ \| \d+ \|"),
    "fetch.py": (["--hosts", "2", "--pages", "3", "--latency", "0.01", "--delay", "0.05"],
                 r"newsflow polite\s+6\s+[\d.]+\s+[\d.]+"),
    "load.py": (["--articles", "200", "--batch-size", "100"], r"load_batch: all indexes.*\d+ rows/s"),
    "pipeline.py": (["--pages", "10", "--out", "{tmp}/pipeline"], r'"run": "unchanged re-run", "exit": 0'),
    "real_pages.py": ([str(SAMPLES / "extraction")], r"(?m)^loaded 3, .*\n.*\n^stored articles.text\s+[\d.]+"),
    "quality.py": (["--sizes", "10", "--passes", "1"], r"(?m)^\s+10\s+load\s+[\d.]+\s+[\d.]+"),
    "scale.py": (["--pages", "10", "--only", "process"], r'"configuration": "process pool", "pages": 10, "exit": 0'),
    "startup.py": (["--files", "1", "--rounds", "1", "--no-warm-up"],
                   r"ratio: [\d.]+ of the wall time \(target: at most 1\.20\), [\d.]+ of the CPU time"),
}
SCRIPTS = sorted(path.name for path in (ROOT / "benchmarks").glob("*.py"))


@pytest.mark.timeout(1200)  # the Prefect ones start a server and run the flow: minutes on a busy machine
@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_runs_at_a_tiny_size_and_prints_its_figures(script, tmp_path):
    assert script in SMOKE, (f"benchmarks/{script} has no smoke run: add it to SMOKE in {Path(__file__).name} "
                             "(arguments of a run of seconds, and a pattern of the figures it prints)")
    arguments, figures = SMOKE[script]
    # The test session's Prefect settings are not the benchmark's: those that start a server set their own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script),
                           *(a.replace("{tmp}", str(tmp_path)) for a in arguments)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1100)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert re.search(figures, done.stdout), done.stdout[-3000:]
