# ruff: noqa: E501  (paragraphs of prose are one line each, as in real article text)
"""Small hand-written news texts for the deduplication tests: a wire story, its copies, another story
from the same outlet, and a follow-up."""

from __future__ import annotations

WIRE_STORY = """Harbour authority approves new ferry terminal

The harbour authority has approved plans for a new ferry terminal on the eastern quay, ending a dispute that has lasted almost four years.

Board members voted seven to two in favour of the scheme on Tuesday evening after a public meeting that ran for more than three hours.

The terminal will replace the ageing passenger building, which engineers said last spring was no longer safe to use in winter storms.

Construction is expected to begin in September and to take eighteen months. The authority said services would continue from a temporary pontoon while the work is carried out.

Local traders had argued that the new building would take parking spaces away from the market square, but the final plans include a multi-storey car park on the site of the old customs house.

"This is the right decision for the island and for the thousands of people who rely on the ferry every day," said the authority's chair, Margaret Ellis.

The project is costed at 31 million pounds, with two thirds coming from a regional development fund and the rest from harbour dues.

Opponents said they would study the decision before deciding whether to seek a judicial review."""

# The same story as republished by another outlet: new headline, byline, dateline, a slot ad and a footer.
WIRE_COPY = """Ferry terminal gets green light after four-year row

By Sam Porter, Staff Writer

PORTMARNOCK (IW) - The harbour authority has approved plans for a new ferry terminal on the eastern quay, ending a dispute that has lasted almost four years.

Board members voted seven to two in favour of the scheme on Tuesday evening after a public meeting that ran for more than three hours.

ADVERTISEMENT

The terminal will replace the ageing passenger building, which engineers said last spring was no longer safe to use in winter storms.

Construction is expected to begin in September and to take eighteen months. The authority said services would continue from a temporary pontoon while the work is carried out.

Local traders had argued that the new building would take parking spaces away from the market square, but the final plans include a multi-storey car park on the site of the old customs house.

"This is the right decision for the island and for the thousands of people who rely on the ferry every day," said the authority's chair, Margaret Ellis.

The project is costed at 31 million pounds, with two thirds coming from a regional development fund and the rest from harbour dues.

Opponents said they would study the decision before deciding whether to seek a judicial review.

Sign up to the Island Weekly newsletter for the stories that matter to you, delivered every Friday morning.

Copyright Island Weekly Media. All rights reserved. This material may not be republished without permission."""

# Another outlet ran only the first three paragraphs, then its own footer.
TRUNCATED_COPY = """Harbour board backs ferry terminal

The harbour authority has approved plans for a new ferry terminal on the eastern quay, ending a dispute that has lasted almost four years.

Board members voted seven to two in favour of the scheme on Tuesday evening after a public meeting that ran for more than three hours.

The terminal will replace the ageing passenger building, which engineers said last spring was no longer safe to use in winter storms.

Continue reading the full story at coastnews.example.org."""

OUTLET_FOOTER = """
Sign up to the Island Weekly newsletter for the stories that matter to you, delivered every Friday morning.

Have your say: comments on this story are moderated and may take up to an hour to appear.

Copyright Island Weekly Media. All rights reserved. This material may not be republished without permission."""

# Two different short stories from one outlet: the same header and footer around different news.
OUTLET_STORY_A = """Library to open on Sundays

By Sam Porter, Staff Writer

The central library will open on Sundays from next month after the council found money for two extra staff.
""" + OUTLET_FOOTER

OUTLET_STORY_B = """School wins robotics final

By Sam Porter, Staff Writer

Pupils from the harbour primary school have won the national junior robotics final with a machine that sorts litter.
""" + OUTLET_FOOTER

OUTLET_STORY_C = """Lifeboat crew called out twice

By Ana Duarte, Staff Writer

The island lifeboat was launched twice on Saturday to help walkers cut off by the tide below the lighthouse.
""" + OUTLET_FOOTER

# A later, different story about the same terminal: a new lead, some background repeated.
FOLLOW_UP = """Judicial review sought over ferry terminal

Campaigners have asked the High Court to review the harbour authority's decision to build a new ferry terminal, saying the consultation was rushed.

The group, Save the Market Square, lodged papers on Friday and has started raising money for legal fees through an online appeal.

Its spokesman, Daniel Reyes, said hundreds of residents had not been told about the public meeting in time to take part.

The harbour authority has approved plans for a new ferry terminal on the eastern quay, ending a dispute that has lasted almost four years.

The authority said it was confident the process had been fair and that it would defend the decision in court.

A hearing is unlikely before the new year, and the authority said work would not start until the case was settled."""


def normalised_copy(text: str) -> str:
    """The same text as another site's HTML export renders it: entities, curly quotes, odd spacing, capitals."""
    return ("\u00a0" + text.replace("'", "\u2019").replace(" - ", " \u2014 ").replace("&", "&amp;")
            .replace("The ", "THE ").replace(". ", ".  ") + "\u200b\n")
