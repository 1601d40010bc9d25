"""The run's quality summary, read from the warehouse: the same text in the Prefect UI (a markdown
artifact) and in a terminal (`newsflow quality`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from tasks import schema
from tasks.datadocs import docs_root
from tasks.records import STAGES
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


def run_summary(engine: Engine, run_id: str | None = None) -> dict[str, Any] | None:
    """What a run took in, let through and held back, and where it went worst (None: no such run)."""
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
        failing = conn.execute(
            select(dq.c.stage, dq.c.severity, dq.c.expectation, func.count(),
                   func.sum(func.coalesce(dq.c.unexpected_count, 0)))
            .where(dq.c.run_id == run_id, dq.c.success.is_(False))
            .group_by(dq.c.stage, dq.c.severity, dq.c.expectation)).all()
        checked = conn.execute(select(func.count()).where(dq.c.run_id == run_id)).scalar() or 0
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
        "stages": [{"stage": s, "in": run[f"{s}_in"], "out": run[f"{s}_out"], "quarantined": held_by_stage[s]}
                   for s in STAGES],
        "quarantined": len(held), "duplicates": duplicates,
        "deferred": run["deferred"] or 0, "deferred_sources": dict(run["deferred_sources"] or {}),
        "top_reasons": [{"stage": s, "reason": r, "rows": n} for (s, r), n in reasons.most_common(TOP_REASONS)],
        "worst_sources": [{"source": s, **dict(c)} for s, c in worst[:WORST_SOURCES]],
        "expectations_checked": checked,
        "failed_expectations": [{"stage": s, "severity": sev, "expectation": e, "times": n, "unexpected": u}
                                for s, sev, e, n, u in sorted(failing, key=lambda r: (r[1] != "critical", r[0]))],
    }


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


def render_markdown(summary: dict[str, Any]) -> str:
    """The summary as markdown: readable as plain text in a terminal, rendered in the Prefect UI."""
    lines = [f"# Run {summary['run_id']}: {summary['status']}", ""]
    if summary["message"]:
        lines += [f"**{summary['message']}**", ""]
    lines += _table(["stage", "in", "out", "quarantined"],
                    [[s["stage"], s["in"], s["out"], s["quarantined"]] for s in summary["stages"]])
    dup = summary["duplicates"]
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(dup.items())) or "none"
    lines += ["", f"Quarantined: {summary['quarantined']} · duplicates dropped: {sum(dup.values())} ({kinds}) · "
              f"expectations checked: {summary['expectations_checked']}", ""]
    if summary["deferred"]:
        lines += [deferred_line(summary["stages"][-1]["out"], summary["deferred"], summary["deferred_sources"]), ""]
    if summary["worst_sources"]:
        lines += ["## Worst sources", ""]
        lines += [*_table(["source", "fetches", "failed fetches", "quarantined"],
                          [[s["source"], s.get("attempts", 0), s.get("failed_fetches", 0), s.get("quarantined", 0)]
                           for s in summary["worst_sources"]]), ""]
    if summary["top_reasons"]:
        lines += ["## Why records were held back", ""]
        lines += [*_table(["stage", "reason", "rows"],
                          [[r["stage"], r["reason"], r["rows"]] for r in summary["top_reasons"]]), ""]
    if summary["failed_expectations"]:
        lines += ["## Expectations that failed", ""]
        lines += [*_table(["stage", "severity", "expectation", "batches", "unexpected"],
                          [[e["stage"], e["severity"], e["expectation"], e["times"], e["unexpected"]]
                           for e in summary["failed_expectations"]]), ""]
    return "\n".join(lines)
