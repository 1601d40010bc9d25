"""Writes the two tiny extraction corpora the benchmark smoke runs use (AEB and evaldata layouts).

    python tests/samples/extraction/make.py

News pages written for this project, in several languages and encodings, each with a menu, a teaser
list and a footer around the article.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

HERE = Path(__file__).parent

PAGES = [
    ("en", "utf-8", "https://harbour-gazette.example/news/quay-vote",
     "Harbour board backs new stone quay",
     ["The harbour board approved a new stone quay on Tuesday evening after a debate that ran past midnight.",
      "Fishermen asked for a temporary landing stage while the old timber quay is taken down.",
      "Work is due to start in the spring and to last about eighteen months, the board said.",
      "The cost, about four million pounds, will be shared between the council and the port authority."]),
    ("de", "utf-8", "https://stadtbote.example/lokales/bruecke",
     "Neue Brücke über die Aller freigegeben",
     ["Nach zwei Jahren Bauzeit ist die neue Fußgängerbrücke über die Aller am Samstag freigegeben worden.",
      "Die Stadt rechnet mit rund dreitausend Menschen, die die Brücke täglich überqueren werden.",
      "Der alte Steg aus den sechziger Jahren war im vergangenen Herbst wegen Rostschäden gesperrt worden.",
      "Radfahrer müssen auf der Brücke absteigen, für sie soll im nächsten Jahr ein eigener Weg folgen."]),
    ("ja", "utf-8", "https://minato-shimbun.example/news/ferry",
     "離島フェリー、三月に運航再開へ",
     ["県は離島と本土を結ぶフェリーの運航を三月から再開すると発表した。",
      "新しい船は以前より一時間早く港に着き、一日四便が運航される予定だ。",
      "島の住民からは通院や買い物が楽になるとの声が上がっている。",
      "運賃は据え置かれ、高校生には通学用の割引定期券が用意される。"]),
    ("fr", "windows-1252", "https://gazette-du-port.example/actualites/marche",
     "Le marché couvert rouvre ses portes",
     ["Après dix-huit mois de travaux, le marché couvert a rouvert ses portes samedi matin.",
      "Les commerçants saluent une halle plus lumineuse et mieux isolée pour l'hiver.",
      "La municipalité prévoit un marché nocturne chaque premier vendredi du mois.",
      "Une trentaine d'étals proposent des produits locaux, du poisson frais aux fromages de la vallée."]),
    ("ru", "windows-1251", "https://gorodskie-vesti.example/novosti/park",
     "В городском парке открыли новую набережную",
     ["В субботу в городском парке открыли обновлённую набережную длиной почти два километра.",
      "Вдоль реки установили скамейки, фонари и новую велосипедную дорожку.",
      "Работы обошлись бюджету города дешевле, чем планировалось весной.",
      "Летом на набережной будут проходить концерты и ярмарки местных мастеров, сообщили в мэрии."]),
    ("zh", "gb18030", "https://haigang-ribao.example/news/metro",
     "地铁新线路本周末开通",
     ["本市地铁三号线将于本周六正式开通运营，全长二十二公里，共设十八座车站。",
      "市民从城东到火车站的通勤时间将缩短近半小时。",
      "运营公司表示，开通首月工作日的发车间隔为六分钟。",
      "沿线多个公交站点也将同步调整，方便乘客换乘。"]),
]


def page(language: str, charset: str, title: str, paragraphs: list[str]) -> bytes:
    menu = "".join(f"<li><a href='/section/{i}'>Section {i}</a></li>" for i in range(12))
    teasers = "".join(f"<li><a href='/story/{i}'>Another story of the day, number {i}</a></li>" for i in range(8))
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    html = (f"<!DOCTYPE html><html lang='{language}'><head><meta charset='{charset}'><title>{title}</title></head>"
            f"<body><nav><ul>{menu}</ul></nav><main><article><h1>{title}</h1>{body}</article>"
            f"<aside><h2>Most read</h2><ul>{teasers}</ul></aside></main>"
            f"<footer><p>© Example Media. All rights reserved. Contact us. Privacy.</p></footer></body></html>")
    return html.encode(charset)


def main() -> None:
    aeb, evaldata = HERE / "aeb", HERE / "evaldata"
    for folder in (aeb, evaldata):
        (folder / "html").mkdir(parents=True, exist_ok=True)
    truth, passages = {}, {}
    for number, (language, charset, url, title, paragraphs) in enumerate(PAGES):
        key = f"{number:02d}-{language}"
        raw = gzip.compress(page(language, charset, title, paragraphs), mtime=0)
        if number % 2 == 0:
            (aeb / "html" / f"{key}.html.gz").write_bytes(raw)
            truth[key] = {"url": url, "articleBody": "\n".join(paragraphs)}
        else:
            (evaldata / "html" / f"{key}.html.gz").write_bytes(raw)
            passages[url] = {"file": f"{key}.html.gz", "with": [paragraphs[0], paragraphs[2]],
                             "without": ["Most read", "All rights reserved"]}
    (aeb / "ground-truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    (evaldata / "evaldata.json").write_text(json.dumps(passages, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
