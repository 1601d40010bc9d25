"""Article-extraction quality and speed on labelled corpora, ours beside plain trafilatura in the same run.

    python benchmarks/extraction.py FOLDER [FOLDER ...] [--worst N] [--rounds 3] [--no-loso] [--limit N]

e.g. `python benchmarks/extraction.py ../shared/extraction-dev ../shared/extraction-dev-multilingual`.

Each FOLDER is one of two layouts, each scored with its own metric:
- **AEB** (Zyte's article-extraction benchmark): `ground-truth.json` ({id: {"articleBody", "url"}}) and
  `html/<id>.html.gz`. Token 4-gram multisets (tokens are `\\w+` matches, case kept; a text of 1-3 tokens is one
  shingle); per page TP = multiset intersection; precision averaged over pages with a non-empty prediction,
  recall over all pages, F1 = 2PR/(P+R) of the two means.
- **evaldata** (trafilatura's multilingual corpus): `evaldata.json` ({url: {"file", "with", "without"}}) and
  `html/<file>`. Whitespace-normalised substring checks: "with" passages found are TP, missing FN, "without"
  passages found FP; summed over pages, F1 = 2TP/(2TP+FP+FN).

Pages are decoded the way the pipeline decodes a body served without a charset header (`decode_body`), and
every extractor gets the same text.

Printed per corpus:
- P, R, F1, wall docs/s and CPU docs/s of `extract_text` (ours) and trafilatura's modes (default, fast,
  precision), passes interleaved round after round, the fastest counting;
- each rule of `tasks.extract.Rules` switched off alone (its F1, and how many sites it helps and costs);
- leave-one-site-out: for every site, the rule set (all rules, or one switched off) that scores best on the
  other sites extracts that site's pages; the figure beside ours shows whether a rule was fitted to one site;
- the pages where ours falls more than 0.2 F1 below plain trafilatura (default mode).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import gzip
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_TOKEN = re.compile(r"\w+")
Extractor = Callable[[str, "str | None"], str]
WARM_UP_PAGES = 5


# --- corpora and metrics ---------------------------------------------------------------------------------


@dataclass
class Page:
    key: str
    url: str | None
    html: str
    site: str
    truth: object  # AEB: the article body; evaldata: (with, without)


def site_of(url: str | None) -> str:
    """The page's site: the host without 'www.', cut to its registrable part (three labels under co/com/...)."""
    host = (urlsplit(url or "").hostname or "").removeprefix("www.")
    labels = host.split(".")
    keep = 3 if len(labels) >= 3 and labels[-2] in ("co", "com", "org", "net", "ac", "gov", "edu") else 2
    return ".".join(labels[-keep:])


def load_corpus(folder: Path, limit: int = 0) -> tuple[str, list[Page]]:
    from tasks.http import decode_body

    def read(name: str) -> str:
        raw = (folder / "html" / name).read_bytes()
        return decode_body(gzip.decompress(raw) if name.endswith(".gz") else raw, None)

    if (folder / "ground-truth.json").exists():
        truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
        pages = [Page(key, item.get("url"), read(f"{key}.html.gz"), site_of(item.get("url")), item["articleBody"])
                 for key, item in list(truth.items())[:limit or None]]
        return "aeb", pages
    data = json.loads((folder / "evaldata.json").read_text(encoding="utf-8"))
    pages = [Page(item["file"], url, read(item["file"]), site_of(url), (item["with"], item["without"]))
             for url, item in list(data.items())[:limit or None]]
    return "evaldata", pages


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        return Counter()
    if len(tokens) < n:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _folded(text: str) -> str:
    return " ".join(text.split())


def page_counts(kind: str, predicted: str, truth: object) -> tuple[float, float, float, bool]:
    """(TP, FP, FN, predicted anything) of one page, in the corpus's own units."""
    if kind == "aeb":
        pred, true = shingles(predicted), shingles(truth)  # type: ignore[arg-type]
        tp = sum((pred & true).values())
        return tp, sum(pred.values()) - tp, sum(true.values()) - tp, bool(pred)
    text = _folded(predicted)
    wanted, unwanted = truth  # type: ignore[misc]
    tp = sum(_folded(p) in text for p in wanted)
    return tp, sum(_folded(p) in text for p in unwanted), len(wanted) - tp, bool(text)


def page_f1(kind: str, predicted: str, truth: object) -> float:
    tp, fp, fn, _ = page_counts(kind, predicted, truth)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def score(kind: str, pages: list[Page], predictions: dict[str, str]) -> tuple[float, float, float]:
    """(precision, recall, F1) of `predictions` over `pages` with the corpus's metric."""
    counts = [page_counts(kind, predictions.get(page.key, ""), page.truth) for page in pages]
    if kind == "aeb":  # means of per-page precision (non-empty predictions) and recall
        precisions = [tp / (tp + fp) for tp, fp, _, any_ in counts if any_ and tp + fp]
        recalls = [tp / (tp + fn) if tp + fn else 1.0 for tp, _, fn, _ in counts]
        p = sum(precisions) / len(precisions) if precisions else 0.0
        r = sum(recalls) / len(recalls) if recalls else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)
    tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
    return (tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0,
            2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)


# --- extractors --------------------------------------------------------------------------------------------


def references() -> dict[str, Extractor]:
    import logging

    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

    def mode(**options: bool) -> Extractor:
        def run(html: str, url: str | None) -> str:
            return trafilatura.extract(html, url=url, deduplicate=False, include_comments=False,
                                       include_tables=True, **options) or ""
        return run

    return {"trafilatura-default": mode(), "trafilatura-fast": mode(fast=True),
            "trafilatura-precision": mode(favor_precision=True)}


def rule_variants() -> dict[str, Extractor]:
    """Ours with every rule, and with each rule switched off alone."""
    from tasks.extract import DEFAULT_RULES, Rules, extract_text

    variants: dict[str, Extractor] = {"ours": extract_text}
    for rule in dataclasses.fields(Rules):
        if rule.type in (bool, "bool"):
            off = dataclasses.replace(DEFAULT_RULES, **{rule.name: False})
        elif rule.name == "net_ratio":
            off = dataclasses.replace(DEFAULT_RULES, net_ratio=0.0)
        else:
            continue
        variants[f"without {rule.name}"] = lambda html, url, rules=off: extract_text(html, url, rules=rules)
    return variants


def stored_text() -> Extractor:
    """The text the clean stage stores (extraction, then normalisation and repeated lines), in-process."""
    from tasks.clean import clean_document
    from tasks.records import Article, Document
    from tasks.settings import get_settings

    settings = get_settings().model_copy(update={"clean_timeout_seconds": 0})

    def run(html: str, url: str | None) -> str:
        result = clean_document(Document(source="benchmark", url=url or "http://page.invalid/", html=html), settings)
        return result.text if isinstance(result, Article) else ""
    return run


def run_timed(extractors: dict[str, Extractor], pages: list[Page], rounds: int
              ) -> tuple[dict[str, dict[str, str]], dict[str, float], dict[str, float]]:
    predictions: dict[str, dict[str, str]] = {}
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    # Every extractor warms up on a few pages first (imports, compiled patterns, caches): the first timed
    # extractor would otherwise pay for what the others get for free.
    for extract in extractors.values():
        for page in pages[:WARM_UP_PAGES]:
            _safely(extract, page)
    for _ in range(max(1, rounds)):
        for name, extract in extractors.items():
            gc.collect()
            started, started_cpu = time.perf_counter(), time.process_time()
            predictions[name] = {page.key: _safely(extract, page) for page in pages}
            wall[name] = min(wall.get(name, float("inf")), time.perf_counter() - started)
            cpu[name] = min(cpu.get(name, float("inf")), time.process_time() - started_cpu)
    return predictions, wall, cpu


def _safely(extract: Extractor, page: Page) -> str:
    try:
        return extract(page.html, page.url)
    except Exception:  # a crash counts as an empty text (the corpora's rule)
        return ""


# --- leave-one-site-out ------------------------------------------------------------------------------------


def _f1_from(kind: str, totals: tuple[float, ...]) -> float:
    """F1 from summed per-page terms (see `_terms`)."""
    if kind == "aeb":
        precision_sum, precision_pages, recall_sum, pages = totals
        p = precision_sum / precision_pages if precision_pages else 0.0
        r = recall_sum / pages if pages else 0.0
        return 2 * p * r / (p + r) if p + r else 0.0
    tp, fp, fn, _ = totals
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _terms(kind: str, predicted: str, truth: object) -> tuple[float, ...]:
    """One page's additive terms of its corpus's F1: sums over pages give the figure of any set of pages."""
    tp, fp, fn, predicted_any = page_counts(kind, predicted, truth)
    if kind == "aeb":
        counted = predicted_any and tp + fp > 0
        return (tp / (tp + fp) if counted else 0.0, float(counted), tp / (tp + fn) if tp + fn else 1.0, 1.0)
    return (tp, fp, fn, 1.0)


def _site_totals(kind: str, pages: list[Page], predictions: dict[str, str]) -> dict[str, tuple[float, ...]]:
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for page in pages:
        for i, term in enumerate(_terms(kind, predictions.get(page.key, ""), page.truth)):
            totals[page.site][i] += term
    return {site: tuple(values) for site, values in totals.items()}


def _minus(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def leave_one_site_out(kind: str, pages: list[Page], variants: dict[str, dict[str, str]]
                       ) -> tuple[dict[str, str], Counter[str]]:
    """Predictions where each site's pages come from the variant scoring best on the other sites."""
    per_site = {name: _site_totals(kind, pages, output) for name, output in variants.items()}
    overall = {name: tuple(map(sum, zip(*sites.values(), strict=True))) for name, sites in per_site.items()}
    chosen: dict[str, str] = {}
    picks: Counter[str] = Counter()
    sites = {page.site for page in pages}
    for site in sites:
        # Ties go to the full rule set ("ours" first in the dict): a rule stays unless leaving it out wins.
        best = max(variants, key=lambda name: _f1_from(kind, _minus(overall[name], per_site[name][site])))
        picks[best] += 1
        chosen.update({page.key: variants[best][page.key] for page in pages if page.site == site})
    return chosen, picks


def rule_sites(kind: str, pages: list[Page], ours: dict[str, str], without: dict[str, str]) -> tuple[int, int]:
    """(sites the rule helps, sites it costs): per-site F1 with the rule against without it."""
    with_rule, without_rule = _site_totals(kind, pages, ours), _site_totals(kind, pages, without)
    deltas = [_f1_from(kind, with_rule[site]) - _f1_from(kind, without_rule[site]) for site in with_rule]
    return sum(delta > 1e-9 for delta in deltas), sum(delta < -1e-9 for delta in deltas)


# --- report ------------------------------------------------------------------------------------------------


def report(folder: Path, args: argparse.Namespace) -> None:
    kind, pages = load_corpus(folder, args.limit)
    sites = len({page.site for page in pages})
    timed = {"ours": rule_variants()["ours"], **references()}
    predictions, wall, cpu = run_timed(timed, pages, args.rounds)
    print(f"\n## {folder.name}: {len(pages)} pages of {sites} sites, metric: "
          f"{'token 4-gram multisets (AEB)' if kind == 'aeb' else 'with/without passages (evaldata)'}; "
          f"best of {args.rounds} interleaved passes; load average {os.getloadavg()[0]:.1f}")
    print(f"{'extractor':34} {'P':>6} {'R':>6} {'F1':>6} {'docs/s':>8} {'cpu docs/s':>11}")
    for name in timed:
        p, r, f1 = score(kind, pages, predictions[name])
        print(f"{name:34} {p:6.3f} {r:6.3f} {f1:6.3f} {len(pages) / wall[name]:8.1f} {len(pages) / cpu[name]:11.1f}")
    stored = stored_text()
    p, r, f1 = score(kind, pages, {page.key: _safely(stored, page) for page in pages})
    print(f"{'ours, as stored (clean stage)':34} {p:6.3f} {r:6.3f} {f1:6.3f}   (articles only: a rejection is empty)")

    ours_f1 = score(kind, pages, predictions["ours"])[2]
    if not args.no_loso:
        variants = rule_variants()
        outputs = {"ours": predictions["ours"]}
        outputs.update({name: {page.key: _safely(extract, page) for page in pages}
                        for name, extract in variants.items() if name != "ours"})
        print(f"{'rule switched off':34} {'F1':>6} {'change':>7} {'sites helped/cost by the rule':>30}")
        for name, output in outputs.items():
            if name == "ours":
                continue
            f1 = score(kind, pages, output)[2]
            helped, costs = rule_sites(kind, pages, predictions["ours"], output)
            print(f"{name:34} {f1:6.3f} {f1 - ours_f1:+7.3f} {helped:>19} / {costs}")
        loso, picks = leave_one_site_out(kind, pages, outputs)
        loso_f1 = score(kind, pages, loso)[2]
        print(f"{'ours, leave-one-site-out':34} {loso_f1:6.3f} {loso_f1 - ours_f1:+7.3f}"
              f"   rule sets chosen: {', '.join(f'{n} ×{c}' for n, c in picks.most_common())}")

    plain = predictions["trafilatura-default"]
    worse = [(page_f1(kind, predictions["ours"][page.key], page.truth) - page_f1(kind, plain[page.key], page.truth),
              page) for page in pages]
    below = sorted(((delta, page) for delta, page in worse if delta < -0.2), key=lambda pair: pair[0])
    print(f"pages more than 0.2 F1 below trafilatura-default: {len(below)}")
    for delta, page in below:
        print(f"    {delta:+.2f} {page.key[:16]} {page.url}")
    if args.worst:
        print(f"worst {args.worst} pages of ours:")
        for page in sorted(pages, key=lambda pg: page_f1(kind, predictions["ours"][pg.key], pg.truth))[:args.worst]:
            print(f"    {page_f1(kind, predictions['ours'][page.key], page.truth):.2f} {page.key[:16]} {page.url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="corpus folders (AEB or evaldata layout)")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes; the fastest counts")
    parser.add_argument("--worst", type=int, default=0, help="also list ours' N worst pages")
    parser.add_argument("--no-loso", action="store_true", help="skip the rule ablation and leave-one-site-out")
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages of each corpus (smoke runs)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    for folder in args.folders:
        report(folder, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
