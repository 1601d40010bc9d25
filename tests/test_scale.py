"""Scale-out: cleaning in a process pool over small chunks, and on a Dask cluster of two worker processes
(prefect-dask), give the same warehouse as each other and publish a progress artifact."""

from __future__ import annotations

import pytest
from prefect_runs import recorded_task_runs
from sqlalchemy import create_engine, text

from tasks.settings import PROJECT_ROOT, get_settings

SOURCES_FILE = str(PROJECT_ROOT / "samples" / "sources.yaml")

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.timeout(600)]

CONTENTS = {
    "articles": "SELECT url, canonical_url, source, title, authors, published_at, language, text, word_count, "
                "content_hash FROM articles ORDER BY canonical_url",
    "duplicates": "SELECT d.url, d.kind, d.similarity, a.canonical_url FROM duplicates d "
                  "JOIN articles a ON a.id = d.article_id ORDER BY d.url",
    "quarantine": "SELECT stage, source, url, reasons FROM quarantine ORDER BY stage, url",
}


def contents(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: [tuple(row) for row in conn.execute(text(query))] for name, query in CONTENTS.items()}
    finally:
        engine.dispose()


def clean_task_runs(flow_run_id: str) -> tuple[list[str], float]:
    """The run's clean task names and its clean-progress artifact's final value."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        progress = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=["clean-progress"])))
    runs = recorded_task_runs(flow_run_id)
    return sorted(r.name for r in runs if r.name.startswith("clean ")), float(progress[0].data)


def test_dask_cluster_and_process_pool_give_the_same_warehouse(sample_site, tmp_path, monkeypatch):
    from distributed import LocalCluster

    from flows.ingest import ingest_news

    # Chunks of at least 4 documents: the sample site's 23 documents become 2 clean tasks in the pool of 2
    # processes, 5 on the Dask cluster.
    monkeypatch.setenv("NEWSFLOW_CPU_CHUNK_SIZE", "4")
    monkeypatch.setenv("NEWSFLOW_CPU_WORKERS", "2")
    get_settings.cache_clear()
    try:
        pooled_url = f"sqlite:///{tmp_path / 'pool.db'}"
        pooled = ingest_news(sources_file=SOURCES_FILE, warehouse_url=pooled_url)

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            monkeypatch.setenv("NEWSFLOW_DASK_ADDRESS", cluster.scheduler_address)
            get_settings.cache_clear()
            dask_url = f"sqlite:///{tmp_path / 'dask.db'}"
            on_dask = ingest_news(sources_file=SOURCES_FILE, warehouse_url=dask_url)
            assert len(cluster.scheduler_info["workers"]) == 2
            # The chunks really went through the cluster's scheduler.
            assert cluster.scheduler.transition_counter > 0
    finally:
        get_settings.cache_clear()

    assert clean_task_runs(pooled["run_id"]) == ([f"clean batch 1 chunk {n}" for n in (1, 2)], 100.0)
    assert clean_task_runs(on_dask["run_id"]) == ([f"clean batch 1 chunk {n}" for n in range(1, 6)], 100.0)
    pooled_contents, dask_contents = contents(pooled_url), contents(dask_url)
    assert len(pooled_contents["articles"]) == 19
    assert dask_contents == pooled_contents
    assert {k: v for k, v in on_dask.items() if k != "run_id"} == {k: v for k, v in pooled.items() if k != "run_id"}
