"""A generated news corpus for the benchmarks: article pages in several site templates, RSS feeds and
sitemaps listing them, syndicated near-copies and broken pages, served over real HTTP on many loopback
hosts (127.0.0.2, 127.0.0.3, ...: each a host of its own for per-host politeness).

Pages weigh what real news pages weigh: most of their bytes are the site's chrome, not the story (inline
CSS and scripts, JSON-LD, a mega-menu, icon sprites, teaser modules, a footer of links). The 62 real pages
of the extraction benchmark's development set measure 55 KB (10th percentile), 120 KB (median) and
289 KB (90th percentile) of HTML; each generated site gets a chrome weight drawn around that median, and
each page its own teaser modules, so that the extraction reference works on pages of a realistic size.

    python benchmarks/corpus.py --pages 1000 --out benchmarks/results/corpus-1000   # write it
    python benchmarks/corpus.py --serve benchmarks/results/corpus-1000              # serve it
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from html import escape
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIRST = ["Amira", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena",
         "Marta", "Nikhil", "Olga", "Pavel", "Quinn", "Rosa", "Samir", "Tara", "Uma", "Viktor", "Wen", "Yusuf"]
LAST = ["Adeyemi", "Brennan", "Castillo", "Duarte", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen",
        "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinlan", "Rossi", "Sato", "Tanaka"]
PLACES = ["Northport", "Eastvale", "Kingsbridge", "Marlow Heath", "Saltmere", "Ashford Lees", "Carrow Bay",
          "Redcliffe", "Wyndham", "Oakridge", "Fenwick", "Larchmont", "Glenhaven", "Thornbury", "Ravensworth"]
BODIES = ["the city council", "the regional health board", "the transport authority", "the port company",
          "the teachers' union", "the water regulator", "the chamber of commerce", "the police service",
          "the university", "the housing association", "the energy cooperative", "the fire service"]
TOPICS = ["budget", "bus network", "hospital waiting lists", "flood defences", "school meals", "rent controls",
          "bridge repairs", "cycle lanes", "library hours", "harbour dredging", "wind farm", "recycling scheme",
          "night trains", "youth centres", "air quality", "broadband rollout", "tram extension", "fishing quotas"]
VERBS = ["approved", "rejected", "postponed", "announced", "defended", "criticised", "reviewed", "expanded",
         "scaled back", "published", "challenged", "welcomed"]
SENTENCES = [
    "{person}, who speaks for {body}, said the decision on the {topic} had been {verb} after {n} weeks of talks.",
    "Residents of {place} packed the hall on {day} evening to hear how the {topic} would affect them.",
    "Figures released on {day} show that spending on the {topic} rose by {pct} per cent in the past year.",
    "\"We have listened carefully and we will keep listening,\" {person} told reporters outside the offices of {body}.",
    "Critics say the plan for the {topic} in {place} leaves too many questions unanswered about cost and timing.",
    "The {topic} was first proposed in {year}, when {body} promised a decision within {n} months.",
    "{person} warned that without extra money the {topic} could be delayed until {year2} at the earliest.",
    "A consultation on the {topic} will run until the end of {month}, and {body} will publish every response.",
    "Local businesses in {place} have been divided, with some welcoming the {topic} and others fearing disruption.",
    "According to a report seen by this newspaper, {n} households in {place} would be directly affected.",
    "Opposition members {verb} the timetable, arguing that {body} had ignored its own advice on the {topic}.",
    "The next meeting of {body} is due on {day}, when a final vote on the {topic} is expected.",
    "{person}, a resident of {place} for {n} years, said the {topic} was the most important issue in the area.",
    "Officials estimate the total cost of the {topic} at {money} million, roughly {pct} per cent more than planned.",
    "Engineers told {body} that work on the {topic} could begin as early as {month} if funding is confirmed.",
    "The announcement came as {body} faces pressure over delays to the {topic} in neighbouring {place2}.",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
TEMPLATES = ("a", "b", "c")


@dataclass(slots=True)
class Page:
    host: int
    slug: str
    title: str
    author: str
    published: datetime
    paragraphs: list[str]
    kind: str = "original"  # original, copy (syndicated near-copy) or broken
    copy_of: str | None = None
    footer: str = ""
    extra: dict = field(default_factory=dict)


def _sentence(rng: random.Random) -> str:
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return rng.choice(SENTENCES).format(
        person=person, body=rng.choice(BODIES), topic=rng.choice(TOPICS), verb=rng.choice(VERBS),
        place=rng.choice(PLACES), place2=rng.choice(PLACES), day=rng.choice(DAYS), month=rng.choice(MONTHS),
        n=rng.randint(2, 900), pct=rng.randint(2, 60), year=rng.randint(2001, 2024), year2=rng.randint(2027, 2035),
        money=rng.randint(2, 400))


def make_article(number: int, host: int, rng: random.Random, start: datetime) -> Page:
    place, topic = rng.choice(PLACES), rng.choice(TOPICS)
    title = f"{place} {rng.choice(VERBS)} {topic} plan as {rng.choice(BODIES).split()[-1]} weighs next step {number}"
    # Varied lengths: most stories 250-700 words, a few long reads.
    paragraph_count = rng.choice([5, 6, 7, 8, 9, 10, 12, 16, 24])
    paragraphs = [" ".join(_sentence(rng) for _ in range(rng.randint(2, 4))) for _ in range(paragraph_count)]
    return Page(host, f"story-{number}", title.capitalize(), f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                start - timedelta(minutes=7 * number), paragraphs)


def syndicate(original: Page, number: int, host: int, rng: random.Random) -> Page:
    """Another outlet's copy: new headline and byline, a few words changed, a partner footer."""
    paragraphs = list(original.paragraphs)
    for _ in range(2):
        index = rng.randrange(len(paragraphs))
        words = paragraphs[index].split()
        words[rng.randrange(len(words))] = rng.choice(["also", "reportedly", "now", "again"])
        paragraphs[index] = " ".join(words)
    return Page(host, f"story-{number}", f"Partner report: {original.title.lower()}",
                f"{rng.choice(FIRST)} {rng.choice(LAST)}", original.published + timedelta(hours=2), paragraphs,
                kind="copy", copy_of=original.slug,
                footer="This article was first published by a partner newsroom and is republished with permission.")


def generate(pages: int, hosts: int, seed: int = 7) -> list[Page]:
    """20% syndicated near-copies of earlier stories on other hosts, 2% broken pages, the rest originals."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    corpus: list[Page] = []
    originals: list[Page] = []
    for number in range(pages):
        host = number % hosts
        roll = rng.random()
        if roll < 0.02:
            corpus.append(Page(host, f"story-{number}", "", "", start, [], kind="broken"))
        elif roll < 0.22 and originals:
            corpus.append(syndicate(rng.choice(originals[-200:]), number, host, rng))
        else:
            page = make_article(number, host, rng, start)
            originals.append(page)
            corpus.append(page)
    return corpus


# --- rendering -------------------------------------------------------------------------------


def _boilerplate(rng: random.Random, site: str) -> dict[str, str]:
    related = "".join(f'<li><a href="/news/r{rng.randint(1, 99999)}.html">{escape(_sentence(rng)[:70])}</a></li>'
                      for _ in range(5))
    teasers = "".join(
        f'<div class="teaser"><a href="/news/t{rng.randint(1, 99999)}.html">'
        f'<img src="/img/t{rng.randint(1, 9999)}.jpg" alt="" loading="lazy" width="320" height="180">'
        f'<h4>{escape(_sentence(rng)[:80])}</h4></a>'
        f'<p class="standfirst">{escape(_sentence(rng)[:90])}</p><span class="label">{rng.choice(TOPICS)}</span>'
        '</div>' for _ in range(rng.randint(4, 12)))
    return {
        "nav": "".join(f'<li><a href="/{s}/">{s.title()}</a></li>' for s in ("news", "sport", "business", "culture")),
        "cookie": "We use cookies to improve your experience. By continuing you accept our cookie policy.",
        "related": related,
        "teasers": teasers,
        "newsletter": f"Sign up for the {site} morning briefing: the day's top stories in your inbox.",
        "footer": f"© 2026 {site}. All rights reserved. Contact us · Privacy · Terms · Advertise",
    }


def _identifier(rng: random.Random, length: int = 8) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(length))


@lru_cache(maxsize=64)
def site_chrome(host: int) -> dict[str, str]:
    """What every page of a site carries besides its story, the same on each page of the site: inline
    CSS, minified scripts, a mega-menu, an icon sprite and a footer of links. Its weight is drawn per site
    (log-normal around 140 KB, so that pages with their story and teasers have a median near 120 KB)."""
    rng = random.Random(f"chrome-{host}")
    target = int(min(400_000, max(30_000, rng.lognormvariate(11.85, 0.7))))  # e^11.85 = 140 KB
    classes = [f"{_identifier(rng, 3)}-{_identifier(rng)}" for _ in range(400)]
    css = [f".{c}{{margin:{rng.randint(0, 24)}px {rng.randint(0, 24)}px;color:#{rng.randrange(16**6):06x};"
           f"font-size:{rng.randint(10, 28)}px;display:{rng.choice(('flex', 'block', 'grid', 'none'))}}}"
           for c in classes]
    words = ["function", "return", "var", "window", "document", "push", "length", "null", "typeof", "this"]
    script = [f"{rng.choice(words)} {_identifier(rng, 2)}=function({_identifier(rng, 1)}){{"
              f"{rng.choice(words)} {_identifier(rng, 1)}.{_identifier(rng, 5)}({rng.randint(0, 9999)})}};"
              for _ in range(600)]
    sections = [f"{rng.choice(PLACES)} {rng.choice(TOPICS)}".title() for _ in range(60)]
    menu = [f'<li class="menu-item"><a href="/{_identifier(rng)}/">{escape(name)}</a><ul class="sub">'
            + "".join(f'<li><a href="/{_identifier(rng)}/{_identifier(rng)}/">{escape(t.title())}</a></li>'
                      for t in rng.sample(TOPICS, 6)) + "</ul></li>" for name in sections]
    sprite = [f'<symbol id="icon-{_identifier(rng)}" viewBox="0 0 24 24"><path d="M'
              + " ".join(f"{rng.randint(0, 24)}.{rng.randint(0, 99)}" for _ in range(40)) + '"/></symbol>'
              for _ in range(30)]
    links = [f'<li><a href="/{_identifier(rng)}/">{escape(rng.choice(PLACES))} {rng.choice(TOPICS)}</a></li>'
             for _ in range(120)]
    parts = {"css": css, "script": script, "menu": menu, "sprite": sprite, "links": links}
    # Each part repeats or stops short, a whole item at a time (never cut inside a tag), to make up its share
    # of the site's weight.
    share = target / sum(len(item) for items in parts.values() for item in items)
    chrome = {}
    for name, items in parts.items():
        budget, kept = share * sum(map(len, items)), []
        for item in itertools.cycle(items):
            if budget <= 0:
                break
            kept.append(item)
            budget -= len(item)
        chrome[name] = "".join(kept)
    return chrome


def render(page: Page, base_url: str) -> str:
    rng = random.Random(page.slug)
    site = f"The {PLACES[page.host % len(PLACES)]} Courier"
    if page.kind == "broken":
        return f"<html><head><title>{page.slug}" + "\ufffd\ufffd ÿØÿà JFIF \ufffd" * 40
    bp = _boilerplate(rng, site)
    url = f"{base_url}/articles/{page.slug}.html"
    body = "".join(f"<p>{escape(p)}</p>" for p in page.paragraphs)
    if page.footer:
        body += f'<p class="partner-note">{escape(page.footer)}</p>'
    head = (f'<meta charset="utf-8"><title>{escape(page.title)} | {site}</title>'
            f'<link rel="canonical" href="{url}"><meta property="og:title" content="{escape(page.title)}">'
            f'<meta property="og:site_name" content="{site}"><meta name="author" content="{page.author}">'
            f'<meta property="article:published_time" content="{page.published.isoformat()}">')
    template = TEMPLATES[page.host % len(TEMPLATES)]
    if template == "a":
        main = (f'<article><h1>{escape(page.title)}</h1><p class="byline">By {page.author}</p>'
                f'<time datetime="{page.published.isoformat()}">{page.published:%d %B %Y}</time>'
                f'<div class="article-body">{body}</div></article>'
                f'<aside class="related"><h2>Related stories</h2><ul>{bp["related"]}</ul></aside>')
    elif template == "b":
        main = (f'<main><div class="story"><h1 class="headline">{escape(page.title)}</h1>'
                f'<div class="meta">By {page.author} · {page.published:%d %B %Y}</div>'
                f'<section class="content">{body}<div class="ad">Advertisement</div></section></div>'
                f'<div class="most-read"><h3>Most read</h3><ol>{bp["related"]}</ol></div></main>')
    else:
        main = (f'<div id="content"><div class="title"><h2>{escape(page.title)}</h2></div>'
                f'<div class="field-author">{page.author}</div><div class="field-body">{body}</div>'
                f'<div class="share">Share on Facebook · Share on X · Email</div>'
                f'<div class="more">Read more: <ul>{bp["related"]}</ul></div></div>')
    chrome = site_chrome(page.host)
    # Real sites mix semantic markup with div soup: template a puts its menu in <nav> and its links in
    # <footer>, b only its footer, c neither (extractors cannot spot those by tag).
    if template == "a":
        menu = f'<header><nav><ul>{bp["nav"]}</ul><ul class="mega-menu">{chrome["menu"]}</ul></nav></header>'
    else:
        menu = (f'<div class="site-header"><ul class="top-links">{bp["nav"]}</ul>'
                f'<div class="menu-wrapper"><ul class="mega-menu">{chrome["menu"]}</ul></div></div>')
    links = f'{bp["footer"]}<ul class="sitemap">{chrome["links"]}</ul>'
    footer = f'<footer>{links}</footer>' if template in "ab" else f'<div id="site-footer">{links}</div>'
    ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": page.title,
                     "datePublished": page.published.isoformat(), "author": {"@type": "Person", "name": page.author},
                     "publisher": {"@type": "Organization", "name": site}})
    return (f'<!DOCTYPE html><html lang="en"><head>{head}<style>{chrome["css"]}</style>'
            f'<script>{chrome["script"]}</script><script type="application/ld+json">{ld}</script></head><body>'
            f'<svg style="display:none">{chrome["sprite"]}</svg>'
            f'<div class="cookie-banner">{bp["cookie"]}</div>{menu}'
            f'{main}<section class="recommended"><h3>Recommended</h3>{bp["teasers"]}</section>'
            f'<div class="newsletter">{bp["newsletter"]}</div>'
            f'{footer}</body></html>')


def render_feed(pages: list[Page], base_url: str, title: str) -> str:
    items = "".join(
        f"<item><title>{escape(p.title or p.slug)}</title><link>{base_url}/articles/{p.slug}.html</link>"
        f"<guid>{base_url}/articles/{p.slug}.html</guid>"
        f"<pubDate>{p.published:%a, %d %b %Y %H:%M:%S +0000}</pubDate></item>" for p in pages)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
            f"<link>{base_url}/</link><description>{escape(title)}</description>{items}</channel></rss>")


def host_address(host: int) -> str:
    return f"127.0.0.{host + 2}"


def write_corpus(pages: int, out: Path, hosts: int = 20, port: int = 8765, feed_size: int = 100) -> dict:
    """Write the corpus as one folder per host (pages, feeds); returns the manifest."""
    corpus = generate(pages, hosts)
    feeds: list[str] = []
    for host in range(hosts):
        base_url = f"http://{host_address(host)}:{port}"
        folder = out / host_address(host)
        (folder / "articles").mkdir(parents=True, exist_ok=True)
        own = [p for p in corpus if p.host == host]
        for page in own:
            (folder / "articles" / f"{page.slug}.html").write_text(render(page, base_url), encoding="utf-8")
        for start in range(0, len(own), feed_size):
            name = f"feed-{start // feed_size}.xml"
            (folder / name).write_text(render_feed(own[start:start + feed_size], base_url, f"Host {host}"),
                                       encoding="utf-8")
            feeds.append(f"{base_url}/{name}")
    manifest = {"pages": pages, "hosts": hosts, "port": port, "feeds": feeds,
                "originals": sum(p.kind == "original" for p in corpus),
                "copies": sum(p.kind == "copy" for p in corpus), "broken": sum(p.kind == "broken" for p in corpus)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def serve(folder: Path) -> list[ThreadingHTTPServer]:
    """Serve every host folder on its own loopback address; returns the running servers."""
    manifest = json.loads((folder / "manifest.json").read_text())
    servers = []
    for host in range(manifest["hosts"]):
        handler = partial(_QuietHandler, directory=str(folder / host_address(host)))
        server = ThreadingHTTPServer((host_address(host), manifest["port"]), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return servers


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", type=Path)
    args = parser.parse_args()
    if args.out:
        print(json.dumps(write_corpus(args.pages, args.out, args.hosts, args.port)))
    if args.serve:
        serve(args.serve)
        threading.Event().wait()
