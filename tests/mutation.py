"""Mutation check of the safeguard modules (`make mutation`): mutmut changes one thing at a time in a module
(a comparison, a constant, a boolean, a call) and runs the tests that cover the changed function; a change no
test notices "survives". Each module is checked on its own, against its own test files only, so a module takes
minutes, not hours. Prints the kill rate per module; survivors are listed in .mutation/<module>/survivors.txt
(their diffs), and the ones that are equivalent (no behaviour can tell them apart) in docs/mutation.md.

    .venv/bin/python tests/mutation.py                     # every module, one after the other
    .venv/bin/python tests/mutation.py urls dedupe         # some of them
    .venv/bin/python tests/mutation.py --max-children 1    # on a busy machine
    .venv/bin/python tests/mutation.py --again http        # after adding tests: rerun the survivors only
    .venv/bin/python tests/mutation.py --report            # the table of the last runs
    .venv/bin/python tests/mutation.py --sample 05 load    # a systematic fifth of the mutants (an estimate)

The tree is copied afresh to .mutation/<module>/ (mutmut writes its mutants there, never in the working tree;
its cache would not notice a changed test). PostgreSQL tests run when NEWSFLOW_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
MUTMUT = Path(sys.executable).with_name("mutmut")
# Module -> the test files that exercise it directly (the whole suite would take hours per module), and the
# functions mutated when not all of them (globs over mutmut's names: a method is `xǁClassǁmethod`).
MODULES: dict[str, tuple[list[str], list[str]]] = {
    # The decisions only: verification, candidate pairs, clustering, what is kept and what a copy points at.
    # The vectorised hashing kernel (tokenising, shingling, MinHash, band keys: 1,200 of its 1,900 mutants) is
    # left out: most of its mutants are equivalent (another odd multiplier or shift hashes as well) and its
    # quality is what benchmarks/dedup.py scores.
    "dedupe": (["tests/test_dedupe.py"], ["x_verify", "x_verified_links", "x_candidate_pairs", "x_sharing_pairs",
                                          "x_deduplicate", "x__point_at_survivors", "xǁ_Componentsǁ*",
                                          "x__preference"]),
    "urls": (["tests/test_fetch_units.py"], []),
    # Less the per-host delay test of test_fetch_units.py: its timing margin is too thin for a machine this busy.
    "http": (["tests/test_http_client.py", "tests/test_fetch_safeguards.py", "tests/test_deadlines.py",
              "tests/test_fetch_units.py", "--deselect",
              "tests/test_fetch_units.py::test_per_host_delay_and_parallel_hosts"], []),
    # test_load.py less its two subprocess tests (a crash, two processes loading at once: a minute per mutant).
    "load": (["tests/test_load_units.py", "tests/test_load.py", *(
        arg for name in ("test_a_crash_in_the_middle_of_a_batch_leaves_nothing_and_the_rerun_completes",
                         "test_two_processes_loading_overlapping_articles_store_each_once")
        for arg in ("--deselect", f"tests/test_load.py::{name}"))], []),
    # test_quality.py less its runs through Prefect and its subprocesses (a minute each per mutant).
    "validate": (["tests/test_validate_units.py", *(f"tests/test_quality.py::{name}" for name in (
        "test_each_critical_cleaned_expectation_quarantines_exactly_its_row",
        "test_per_source_checks_fail_the_source_not_the_batch", "test_suite_edited_on_disk_changes_the_outcome",
        "test_warehouse_checks_reconcile_with_the_run",
        "test_each_critical_fetched_and_deduplicated_expectation_quarantines_exactly_its_row",
        "test_context_has_progress_bars_and_analytics_off", "test_stage_frames_hold_only_the_columns_their_suite_reads",
        "test_a_failed_warm_up_leaves_the_error_to_the_first_check"))], []),
    # test_config_bounds.py less its command test (a whole `newsflow` process per mutant).
    "sources": (["tests/test_sources.py", "tests/test_fetch_units.py", *(
        f"tests/test_config_bounds.py::{name}" for name in (
            "test_an_alias_bomb_file_is_refused_before_it_is_walked",
            "test_a_shared_structure_given_as_a_parameter_is_refused_too",
            "test_deep_nesting_and_huge_values_are_refused", "test_ordinary_anchors_still_work"))], []),
}
SKIP = shutil.ignore_patterns(".venv", ".git", ".mutation", "mutants", "data", "__pycache__", "results",
                              ".pytest_cache", "*.egg-info")


def prepare(module: str) -> Path:
    """A copy of the tree whose pyproject.toml tells mutmut what to mutate and which tests to run."""
    work = WORK / module
    if work.exists():  # from scratch: mutmut's cache does not notice changed tests
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if SKIP(str(ROOT), [entry.name]):
            continue
        target = work / entry.name
        shutil.copytree(entry, target, ignore=SKIP) if entry.is_dir() else shutil.copy2(entry, target)
    # Test files, node ids (`file::test`) and pytest options (`-k`, its expression): a file that is gone is left out.
    tests = [t for t in MODULES[module][0] if not t.startswith("tests/") or (ROOT / t.split("::")[0]).exists()]
    with (work / "pyproject.toml").open("a") as config:
        config.write(f"""
[tool.mutmut]
source_paths = ["tasks"]
only_mutate = ["tasks/{module}.py"]
also_copy = ["flows", "samples", "expectations", "alembic.ini", "deployments", "benchmarks"]
pytest_add_cli_args_test_selection = {json.dumps(tests)}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]
""")
    return work


SHOW = """
import sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, target, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(target, "w") as out:
    for name in names:
        out.write(f"## {name}\\n{get_diff_for_mutant(name, path=path)}\\n\\n")
"""

# mutmut's exit codes of a mutant's test run (mutmut/stats.py), as this report counts them.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", None: "not checked",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}


def _meta(module: str) -> dict:
    return json.loads((WORK / module / "mutants" / "tasks" / f"{module}.py.meta").read_text())


def run(module: str, max_children: int, mode: str = "run", sample: str = "") -> Counter:
    """Mutate one module, run its tests on each mutant; the count of mutants per outcome. Mode "report": count
    the outcomes of the last run (its survivors written again); "again": run the last run's survivors (and
    mutants no test reached) again with today's tests, keeping the other verdicts (tests only added can only
    kill more)."""
    work = prepare(module) if mode == "run" else WORK / module
    # `sample`: the mutants whose number ends in one of these digits ("05": a systematic fifth of them).
    names = [f"tasks.{module}.{function}__mutmut_*{digit}" for function in MODULES[module][1] or ["*"]
             for digit in sample or [""]] if MODULES[module][1] or sample else []
    started = time.monotonic()
    if mode == "again":
        shutil.copytree(ROOT / "tests", work / "tests", ignore=SKIP, dirs_exist_ok=True)
        again = sorted(name for name, code in _meta(module)["exit_code_by_key"].items()
                       if STATUS.get(code) in ("survived", "no tests", "not checked")
                       and (not names or any(fnmatch.fnmatchcase(name, pattern) for pattern in names)))
    if mode != "report" and (mode == "run" or again):
        with (work / "mutmut.log").open("a" if mode == "again" else "w") as log:
            subprocess.run([str(MUTMUT), "run", "--max-children", str(max_children),
                            *(again if mode == "again" else names)], cwd=work, stdout=log,
                           stderr=subprocess.STDOUT, check=False)
    meta = _meta(module)
    outcomes = {name: STATUS.get(code, "other") for name, code in meta["exit_code_by_key"].items()
                if not names or any(fnmatch.fnmatchcase(name, pattern) for pattern in names)}
    survivors = sorted(n for n, outcome in outcomes.items() if outcome == "survived")
    # Every diff in one process (`mutmut show` per survivor took seconds each, minutes in all).
    subprocess.run([sys.executable, "-c", SHOW, f"tasks/{module}.py", "survivors.txt", *survivors], cwd=work,
                   check=False)
    counts = Counter(outcomes.values())
    counts["total"] = len(outcomes)
    counts["seconds"] = round(time.monotonic() - started)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report", action="store_true", help="the table of the last run, without running again")
    parser.add_argument("--again", action="store_true",
                        help="rerun the last run's survivors with the tests as they are now (after adding tests), "
                             "and the mutants it did not reach (an interrupted run goes on)")
    parser.add_argument("--sample", default="", metavar="DIGITS",
                        help='only the mutants whose number ends in one of these digits ("05": a fifth of them)')
    args = parser.parse_args()
    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}; choose from {', '.join(MODULES)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(f"{'module':<16}{'mutants':>8}{'killed':>8}{'survived':>9}{'timeout':>8}{'no tests':>9}{'not run':>8}"
          f"{'killed %':>9}{'minutes':>8}", flush=True)
    for module in args.modules or MODULES:
        if (args.report or args.again) and not (WORK / module / "mutants" / "tasks" / f"{module}.py.meta").exists():
            continue  # never run
        counts = run(module, args.max_children, "report" if args.report else "again" if args.again else "run",
                     args.sample)
        caught = counts["killed"] + counts["timeout"]  # a mutant that hangs the tests is caught too
        checked = counts["total"] - counts["not checked"]  # (an interrupted run: of those it reached)
        rate = 100 * caught / checked if checked else 0.0
        print(f"{'tasks/' + module + '.py':<16}{counts['total']:>8}{counts['killed']:>8}{counts['survived']:>9}"
              f"{counts['timeout']:>8}{counts['no tests']:>9}{counts['not checked']:>8}{rate:>8.1f}%"
              f"{counts['seconds'] / 60:>8.1f}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"survivors with their diffs: {WORK.relative_to(ROOT)}/<module>/survivors.txt; equivalent ones: "
          "docs/mutation.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
