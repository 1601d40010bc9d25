"""The run's quality summary, read from the warehouse: the same text in the Prefect UI (a markdown
artifact) and in a terminal (`newsflow quality`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from tasks import schema
from tasks.datadocs import docs_root
from tasks.settings import Settings

WORST_SOURCES = 5
TOP_REASONS = 8


def data_docs_dir(settings: Settings, run_id: str) -> Path:
    """Where the run's Data Docs site goes: `<run>` in the Data Docs folder (see tasks.datadocs.docs_root)."""
    return docs_root(settings) / run_id


def latest_run_id(engine: Engine) -> str | None:
    runs = schema.pipeline_runs
    with engine.connect() as conn:
        return conn.execute(select(runs.c.run_id).order_by(runs.c.started_at.desc()).limit(1)).scalar()


def _reason_key(reason: str) -> str:
    """A reason without its offending value, so that equal causes are counted together."""
    return reason.split(": ", 1)[0] if reason.startswith("expect_") else reason[:120]


def counted_rows(stage_counts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stage table of a run whose ledger counted every side of every stage (`stage_counts` with
    `unchanged`, since migration 0015): each row as the run counted it, checks included (a stage's
    quarantined are those it rejected and those its check held back), adding up to `in`:
    - fetch: the pages, files and records read or tried: passed on; failed, refused or held back by the
      fetch checks (quarantined); unchanged since the run that loaded them (a 304, or read again the same
      as their article was cleaned from: passed on no further);
    - clean: documents in, articles out; dedupe: copies of other articles dropped (duplicates);
    - load: articles written new or with a changed text (passed), texts as they were (unchanged), copies of
      an article another run loaded meanwhile (duplicates), copies whose article was missing (quarantined).
    """
    return [{"stage": c["stage"], "in": c["in"], "passed": c["out"], "quarantined": c["quarantined"],
             "duplicates": c["dropped"], "unchanged": c["unchanged"]} for c in stage_counts]


def is_counted(stage_counts: list[dict[str, Any]] | None) -> bool:
    return bool(stage_counts) and all("unchanged" in c for c in stage_counts)


def stage_rows(counts: dict[str, Any], held_by_stage: dict[str, int], not_modified: int,
               written: dict[str, int], stage_counts: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The stage table of a run recorded before its ledger counted unchanged records (see `counted_rows`),
    rebuilt from its columns and rows: what each stage took in, and what became of it, each row adding up to
    `in` (passed + quarantined + duplicates + unchanged).

    `counts` are the run's <stage>_in/_out, `held_by_stage` its quarantine rows per stage, `not_modified`
    its 304 answers, `written` the articles its loads wrote `new` and `changed`. Per stage:
    - fetch: what was read or tried (pages, files, records, listings): documents passed on, failed or
      refused (quarantined), unchanged since the last run (304);
    - clean: documents in, articles out, the others quarantined;
    - dedupe: copies of other articles dropped (duplicates);
    - validate: the deduplicated checks (their quarantine rows name the dedupe stage);
    - load: articles with a new or changed text written (passed), copies of an article another run loaded
      meanwhile (duplicates), texts as they were (unchanged: only marked as seen again), copies whose
      article was missing (quarantined).
    """
    get = lambda key: int(counts.get(key) or 0)  # noqa: E731
    load_passed = written.get("new", 0) + written.get("changed", 0)
    rows = {
        "fetch": (get("fetch_out"), held_by_stage.get("fetch", 0), 0, not_modified),
        "clean": (get("clean_out"), held_by_stage.get("clean", 0), 0, 0),
        "dedupe": (get("dedupe_out"), 0, get("dedupe_in") - get("dedupe_out"), 0),
        "validate": (get("validate_out"), held_by_stage.get("dedupe", 0) + held_by_stage.get("validate", 0), 0, 0),
        "load": (load_passed, held_by_stage.get("load", 0), get("load_in") - get("load_out"),
                 get("load_out") - load_passed),
    }
    # Fetch has no input of its own: its "in" is what it ended with. The others' is what they counted in, so a
    # row that does not add up shows a miscount instead of hiding it.
    taken_in = {"fetch": sum(rows["fetch"]), "load": get("load_in") + held_by_stage.get("load", 0)}
    table = [{"stage": stage, "in": taken_in.get(stage, get(f"{stage}_in")), "passed": parts[0],
              "quarantined": parts[1], "duplicates": parts[2], "unchanged": parts[3]}
             for stage, parts in rows.items()]
    # The stages a pipeline adds between dedupe and load have no columns of their own: their figures are in
    # the run's `stage_counts` (migration 0012), and their rows go before load's.
    added = [{"stage": c["stage"], "in": c["in"], "passed": c["out"], "quarantined": c["quarantined"],
              "duplicates": c["dropped"], "unchanged": 0} for c in stage_counts or [] if c["stage"] not in rows]
    return table[:-1] + added + table[-1:]


LARGEST_STORIES = 3


def run_summary(engine: Engine, run_id: str | None = None) -> dict[str, Any] | None:
    """What a run took in, let through and held back, its stories, and where it went worst (None: no such
    run). Read from the warehouse, so the UI and `newsflow quality` say the same."""
    run_id = run_id or latest_run_id(engine)
    runs, q, dq, f, d = (schema.pipeline_runs, schema.quarantine, schema.dq_results, schema.fetches,
                         schema.duplicates)
    with engine.connect() as conn:
        run = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first() if run_id else None
        if run is None:
            return None
        held = conn.execute(select(q.c.stage, q.c.source, q.c.reasons).where(q.c.run_id == run_id)).all()
        duplicates = dict(conn.execute(select(d.c.kind, func.count()).where(d.c.run_id == run_id)
                                       .group_by(d.c.kind)).all())
        fetches = conn.execute(select(f.c.source, func.count(), func.count(f.c.error))
                               .where(f.c.run_id == run_id).group_by(f.c.source)).all()
        not_modified = conn.execute(select(func.count()).where(f.c.run_id == run_id, f.c.not_modified.is_(True))
                                    ).scalar() or 0
        failing = conn.execute(
            select(dq.c.stage, dq.c.severity, dq.c.expectation, dq.c.unexpected_count, dq.c.observed_value)
            .where(dq.c.run_id == run_id, dq.c.success.is_(False)).order_by(dq.c.id)).all()
        checked = conn.execute(select(func.count()).where(dq.c.run_id == run_id)).scalar() or 0
        counted = is_counted(run["stage_counts"])
        written, stories = ({}, _stories_of(conn, run_id)) if counted else _written_and_stories(
            conn, run_id, run["started_at"])
    held_by_stage = Counter(stage for stage, _, _ in held)
    reasons = Counter((stage, _reason_key(str(r))) for stage, _, rs in held for r in (rs or [])[:3])
    per_source: dict[str, Counter[str]] = {}
    for source, attempts, errors in fetches:
        per_source.setdefault(source or "?", Counter()).update(attempts=attempts, failed_fetches=errors)
    for _, source, _ in held:
        per_source.setdefault(source or "?", Counter()).update(quarantined=1)
    worst = sorted(((s, c) for s, c in per_source.items() if c["quarantined"] or c["failed_fetches"]),
                   key=lambda item: (-(item[1]["quarantined"] + item[1]["failed_fetches"]), item[0]))
    return {
        "run_id": run["run_id"], "status": run["status"], "message": run["message"],
        "started_at": run["started_at"], "finished_at": run["finished_at"],
        "stages": counted_rows(run["stage_counts"]) if counted else stage_rows(
            dict(run), held_by_stage, not_modified, written, run["stage_counts"]),
        "quarantined": len(held), "duplicates": duplicates, "stories": stories,
        "deferred": run["deferred"] or 0, "deferred_sources": dict(run["deferred_sources"] or {}),
        "top_reasons": [{"stage": s, "reason": r, "rows": n} for (s, r), n in reasons.most_common(TOP_REASONS)],
        "worst_sources": [{"source": s, **dict(c)} for s, c in worst[:WORST_SOURCES]],
        "expectations_checked": checked,
        "failed_expectations": failed_expectations(failing),
    }


def failed_expectations(rows: list[Any]) -> list[dict[str, Any]]:
    """The run's failed expectations, one line each (critical first): the batches that failed it, the
    unexpected values in all, and an example of an offending value (its first failure's observed value)."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for stage, severity, expectation, unexpected, observed in rows:
        entry = merged.setdefault((stage, severity, expectation), {
            "stage": stage, "severity": severity, "expectation": expectation, "times": 0, "unexpected": 0,
            "example": None})
        entry["times"] += 1
        entry["unexpected"] += unexpected or 0
        if entry["example"] is None and observed not in (None, "", "[]", "{}"):
            entry["example"] = observed if len(observed) <= EXAMPLE_CHARS else observed[:EXAMPLE_CHARS - 1] + "…"
    return sorted(merged.values(), key=lambda e: (e["severity"] != "critical", e["stage"], e["expectation"]))


EXAMPLE_CHARS = 100


def _stories_of(conn: Any, run_id: str) -> dict[str, Any]:
    """The stories a run's loads opened, its articles that joined a story opened before it (`run_writes`,
    written by the loads themselves), and the largest of those stories."""
    w, a, s = schema.run_writes, schema.articles, schema.stories
    opened = select(w.c.row_id).where(w.c.run_id == run_id, w.c.kind == "story")
    joining = select(w.c.row_id).where(w.c.run_id == run_id, w.c.kind == "story_join")
    new = conn.execute(select(func.count()).select_from(opened.subquery())).scalar() or 0
    joined = conn.execute(select(func.count()).select_from(joining.subquery())).scalar() or 0
    joined_stories = select(a.c.story_id).where(a.c.id.in_(joining), a.c.story_id.is_not(None))
    outlets = select(func.count(func.distinct(a.c.source))).where(a.c.story_id == s.c.id).scalar_subquery()
    largest = conn.execute(select(s.c.id, s.c.title, s.c.article_count, outlets)
                           .where(s.c.id.in_(opened) | s.c.id.in_(joined_stories))
                           .order_by(s.c.article_count.desc(), s.c.id).limit(LARGEST_STORIES)).all()
    return {"new": new, "joined": joined,
            "largest": [{"id": i, "title": t, "articles": n, "outlets": o} for i, t, n, o in largest]}


def _written_and_stories(conn: Any, run_id: str, started_at: Any) -> tuple[dict[str, int], dict[str, Any]]:
    """For a run recorded before its loads noted their stories (see `_stories_of`): the articles its loads
    wrote new (first seen since it started) or with a changed text, and its stories, by their timestamps:
    started by it, joined by its new articles (started before it), the largest it touched."""
    w, a, s, v = schema.run_writes, schema.articles, schema.stories, schema.article_versions
    mine = select(w.c.row_id).where(w.c.run_id == run_id, w.c.kind == "article").scalar_subquery()
    new = a.c.first_seen_at >= started_at
    written = {
        "new": conn.execute(select(func.count()).where(a.c.id.in_(mine), new)).scalar() or 0,
        "changed": conn.execute(select(func.count(func.distinct(v.c.article_id)))
                                .where(v.c.replaced_by_run_id == run_id)).scalar() or 0,
    }
    touched = select(a.c.story_id).where(a.c.id.in_(mine), a.c.story_id.is_not(None))
    started = conn.execute(select(func.count()).where(s.c.id.in_(touched), s.c.first_seen_at >= started_at)
                           ).scalar() or 0
    joined = conn.execute(select(func.count()).select_from(a.join(s, a.c.story_id == s.c.id))
                          .where(a.c.id.in_(mine), new, s.c.first_seen_at < started_at)).scalar() or 0
    outlets = select(func.count(func.distinct(a.c.source))).where(a.c.story_id == s.c.id).scalar_subquery()
    largest = conn.execute(select(s.c.id, s.c.title, s.c.article_count, outlets).where(s.c.id.in_(touched))
                           .order_by(s.c.article_count.desc(), s.c.id).limit(LARGEST_STORIES)).all()
    return written, {"new": started, "joined": joined,
                     "largest": [{"id": i, "title": t, "articles": n, "outlets": o} for i, t, n, o in largest]}


def deferred_line(loaded: int, deferred: int, by_source: dict[str, int]) -> str:
    """"500 loaded, 1,500 left for the next runs (files-1 1,500)": what the sources' budgets held over."""
    sources = ", ".join(f"{name} {n:,}" for name, n in sorted(by_source.items(), key=lambda item: -item[1]))
    return (f"{loaded:,} loaded, {deferred:,} left for the next runs (over the sources' per-run budgets"
            f"{': ' + sources if sources else ''})")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]]


STAGE_COLUMNS = ("in", "passed", "quarantined", "duplicates", "unchanged")


def render_stage_table(stages: list[dict[str, Any]]) -> str:
    """The stage table as plain text, for the end of `newsflow ingest`."""
    lines = [f"{'stage':<10}" + "".join(f"{c:>13}" for c in STAGE_COLUMNS)]
    lines += [f"{row['stage']:<10}" + "".join(f"{row[c]:>13}" for c in STAGE_COLUMNS) for row in stages]
    return "\n".join(lines)


def render_markdown(summary: dict[str, Any], docs_url: str | None = None) -> str:
    """The summary as markdown: readable as plain text in a terminal, rendered in the Prefect UI (the
    run-summary artifact), with the link to the run's Data Docs when there is one."""
    lines = [f"# Run {summary['run_id']}: {summary['status']}", ""]
    if summary["message"]:
        lines += [f"**{summary['message']}**", ""]
    if docs_url:
        lines += [f"Every expectation, with the unexpected values: [Data Docs of this run]({docs_url})", ""]
    lines += _table(["stage", *STAGE_COLUMNS], [[s["stage"], *(s[c] for c in STAGE_COLUMNS)]
                                                 for s in summary["stages"]])
    dup = summary["duplicates"]
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(dup.items())) or "none"
    lines += ["", "Each row: in = passed + quarantined + duplicates + unchanged. Fetch counts what it read or "
              "tried; what it found unchanged since it was loaded (a 304, or the same page, file or record "
              "again) goes no further. Load passes on the articles it wrote new or changed, and leaves "
              "unchanged texts as they were.", "",
              f"Quarantined: {summary['quarantined']} · duplicates recorded: {sum(dup.values())} ({kinds}) · "
              f"expectations checked: {summary['expectations_checked']}", ""]
    if summary.get("deferred"):
        load = summary["stages"][-1]
        lines += [deferred_line(load["passed"] + load["unchanged"], summary["deferred"],
                                summary["deferred_sources"]), ""]
    stories = summary.get("stories")
    if stories:
        lines += ["## Stories", "", f"New stories: {stories['new']} · new articles joining an earlier story: "
                  f"{stories['joined']}", ""]
        if stories["largest"]:
            lines += [*_table(["largest stories of this run", "articles", "outlets"],
                              [[s["title"] or f"story {s['id']}", s["articles"], s["outlets"]]
                               for s in stories["largest"]]), ""]
    if summary["failed_expectations"]:
        lines += ["## Expectations that failed", ""]
        lines += [*_table(["stage", "severity", "expectation", "batches", "unexpected", "example"],
                          [[e["stage"], e["severity"], e["expectation"], e["times"], e["unexpected"],
                            e["example"] or ""] for e in summary["failed_expectations"]]), ""]
    if summary["worst_sources"]:
        lines += ["## Worst sources", ""]
        lines += [*_table(["source", "fetches", "failed fetches", "quarantined"],
                          [[s["source"], s.get("attempts", 0), s.get("failed_fetches", 0), s.get("quarantined", 0)]
                           for s in summary["worst_sources"]]), ""]
    if summary["top_reasons"]:
        lines += ["## Why records were held back", ""]
        lines += [*_table(["stage", "reason", "rows"],
                          [[r["stage"], r["reason"], r["rows"]] for r in summary["top_reasons"]]), ""]
    return "\n".join(lines)
