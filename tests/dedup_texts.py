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


# --- pairs for one verification rule each (tests/test_dedupe.py): copies of WIRE_STORY that only one rule
# catches, and texts that come close to one rule's threshold without reaching it.

_PARAGRAPHS = WIRE_STORY.split("\n\n")  # the headline, then eight paragraphs
_OWN_LEAD = [
    "Years of wrangling over the eastern quay came to an end this week when harbour chiefs gave their backing to a replacement ferry terminal.",
    "The decision, taken by seven votes to two late on Tuesday, followed a packed and sometimes heated meeting in the town hall that lasted well into the night.",
]
_REACTION = [
    "Within an hour of the vote, the campaign group that opposed the scheme had posted a statement online calling the decision a betrayal of the market traders.",
    "Its chairman, Tom Whitaker, said members would meet on Thursday to decide their next step and had already been offered help by a firm of solicitors.",
    "Ferry operators welcomed the news. A spokeswoman for Island Link said the company had been waiting for certainty before ordering two new vessels for the route.",
    "Tourism businesses on the seafront also backed the plan, saying the present building gave visitors a poor first impression of the island.",
    "Councillors are due to discuss the car park at their next planning meeting, where the design of the multi-storey block is expected to draw objections.",
    "A full transcript of the meeting will be published on the authority's website next week.",
]


def _story(*paragraphs: str) -> str:
    return "\n\n".join(paragraphs)


# Body Jaccard only: the lead rewritten in the outlet's own words, the rest kept (both bodies alike in size,
# so the shorter is not contained enough; the leads differ).
REWRITTEN_LEAD_COPY = _story("Harbour chiefs back new terminal", *_OWN_LEAD, *_PARAGRAPHS[3:])
# Containment only: the second half of the story and nothing else (too short for the bodies' Jaccard, and its
# lead is another part of the story).
SECOND_HALF_COPY = _story("Terminal row ends as harbour board says yes", *_PARAGRAPHS[5:])
# Lead only: the first three paragraphs kept, then the outlet's own reporting of the reactions.
KEPT_LEAD_UPDATE = _story("Ferry terminal approved: what happens next", *_PARAGRAPHS[1:4], *_REACTION)

# Near misses, one per rule: each joined if that rule's threshold were a little lower.
# The lead and the ending rewritten: the bodies' Jaccard falls short.
REWRITTEN_LEAD_AND_ENDING = _story("Harbour chiefs back new terminal", *_OWN_LEAD, *_PARAGRAPHS[3:8], _REACTION[3])
# Three of the story's paragraphs under one of its own: too little of the shorter is in the story.
QUOTING_REPORT = _story("Terminal row ends as harbour board says yes", *_PARAGRAPHS[5:8], _REACTION[0])
# The first paragraph and a shortened second, then a story of its own: the leads share too little.
SAME_OPENING_REPORT = _story("Traders vow to fight terminal decision", _PARAGRAPHS[1],
                             "Board members voted seven to two in favour of the scheme on Tuesday evening.", *_REACTION)


# A second story from the city of the Chinese sample (samples/languages/zh.txt), by the same paper: the same
# names, offices and phrasing, another event. A copy of one must not be joined with the other.
ZH_OTHER_STORY = """滨江市防汛工程进入收尾阶段 主汛期前全面完工

本报讯 记者从滨江市水务局获悉，总投资约十二亿元的城区防汛排涝工程目前已进入收尾阶段，新建的三座排涝泵站已经完成设备安装和调试，预计将在主汛期到来之前全面投入使用。

市水务局副局长陈立新介绍，这项工程于去年十月开工，主要内容包括扩建城东和城南两条排水干渠、新建三座排涝泵站以及改造沿江十二公里长的防洪堤。工程完工后，城区的排涝能力将由原来的每小时三十毫米提高到每小时五十毫米。

去年七月的一场暴雨曾导致城区多处道路积水，部分低洼地段的商铺和居民楼一楼进水。住在江滨路附近的个体户张志强说，那次暴雨让他的小吃店停业了整整一个星期，“希望新的泵站能真正发挥作用，别再让我们提心吊胆地过夏天了。”

陈立新表示，为了确保工程质量，水务局邀请了第三方检测机构对每一个泵站进行了满负荷试运行。同时，全市各街道已经组建了抢险队伍，储备了沙袋、抽水泵等防汛物资。

市水务局提醒市民，汛期期间要密切关注气象预警信息，遇到强降雨天气尽量减少外出，车辆不要停放在地下车库和低洼路段。"""

# Another outlet's own report of the event in samples/languages/zh.txt: its own headline and words.
ZH_REWRITTEN_REPORT = """滨江三年改造一百二十个老旧小区 加装电梯政府补贴一半

滨江市住建局日前召开新闻发布会宣布，今后三年内将对全市一百二十个老旧住宅小区进行改造，约三万户居民将从中受益。

住建局局长王建国介绍，改造内容主要包括加装电梯、更换供水管道、改善排水系统，以及增设停车位和绿地。总投资约四十五亿元，由市区两级财政和社会资本共同出资。

根据方案，加装电梯的费用政府补贴一半，剩余部分由业主分摊。首批二十个小区计划明年三月开工。"""
