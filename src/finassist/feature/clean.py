"""Cleaning: HTML → plain text with paragraph breaks, unicode normalised, boilerplate removed. Pure functions.

Measured against `unstructured` (the reference course's choice) in benchmarks/clean.py (docs/benchmarks.md):
selectolax (lexbor, C) + ftfy keeps paragraphs, fixes mojibake and drops boilerplate, 13x faster than
`partition_html` (which cannot run offline: it downloads a spaCy model) with 14 MB of dependencies instead of 583 MB.
"""

from __future__ import annotations

import html
import re
import unicodedata

import ftfy
from selectolax.lexbor import LexborHTMLParser

from finassist.domain import CleanArticle, NewsArticle, Quarantined
from finassist.feature.guard import Budget

# Elements whose whole subtree is never article text.
DROP_TAGS = ["script", "style", "noscript", "iframe", "svg", "template", "head", "form", "button", "aside", "nav"]
# Elements that start a new paragraph; text under the same nearest block element stays one paragraph.
BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "blockquote",
        "pre",
        "section",
        "article",
        "header",
        "footer",
        "figure",
        "figcaption",
        "main",
        "address",
        "hr",
        "caption",
        "details",
        "summary",
    ]
)
CELL_TAGS = frozenset({"td", "th"})

# Characters that render as (or like) a space, and characters that render as nothing.
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u2009\u200a\u2002\u2003\u2004\u2005\u2006\u2008\u205f\u3000"), " ")
# Zero-width characters, C0/C1 control characters (ftfy keeps some, e.g. U+008D), and the bidi embedding/override/
# isolate controls (U+202A–U+202E, U+2066–U+2069), which can make a headline display differently from what it says.
_INVISIBLE = dict.fromkeys(
    [
        *map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"),
        *(c for c in range(0x20) if chr(c) not in "\t\n\r\f\v"),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ],
    None,
)
_TRANSLATE = {**_SPACES, **_INVISIBLE}

# Body paragraphs that are site furniture, not news: each rule matches a whole (normalised) paragraph and is written
# to fire only on a high-confidence pattern (a labelled link, a call to action, a credit line, a copyright notice),
# never on a topic word alone: "Copyright Issues Posted On Facebook ..." and "Trending In After-Hours: Adobe, FedEx"
# are news. Headlines and summaries are never filtered (516 real Benzinga headlines were once emptied that way).
#
# A labelled link names another story ("Read Next: X Raises Dividend 7%"); its figures are that story's, not this
# article's, so it goes whatever it says.
LINK_LINE = re.compile(
    r"^(?:(?:read|see) (?:more|next|also)|(?:now |also )?read(?: next)?|related(?: articles?| stories| news| links)?"
    r"|don'?t miss|(?:also )?trending(?: now)?|recommended|more from \w+)\s*:.{0,200}$",
    re.IGNORECASE | re.DOTALL,
)
# The rest never remove a paragraph that states a figure (_FACT).
FURNITURE = re.compile(
    r"^(?:"
    r"click here\b.{0,80}"
    r"|(?:read|see) more\.?"
    r"|.{0,120}\bbenzinga pro\b.{0,40}\b(?:subscribers?|free trial|try it|sign up|join)\b.{0,200}"
    r"|.{0,60}\b(?:join|try|subscribe to|sign up for) benzinga pro\b.{0,200}"
    r"|this (?:article|story|content) (?:was|is) (?:generated|produced|written)\b.{0,300}"
    r"|(?:subscribe|sign up)(?: now| today)? (?:to|for|here)\b.{0,150}"
    r"|(?:photo|image|video|chart|graphic)s? (?:by|courtesy of|credit|source|via)\b.{0,150}"
    r"|(?:photo|image)(?: credit)?: .{0,80}"
    r"|(?:follow|like) us on\b.{0,100}"
    r"|(?:©|copyright\s*©?)\s*(?:19|20)\d\d\b.{0,150}"
    r"|(?:©|\(c\)|copyright)\b.{0,150}all rights reserved\.?"
    r"|(?:advertisement|sponsored(?: content)?|ad)"
    r"|(?:disclaimer|disclosure):.{0,600}"
    r")$",
    re.IGNORECASE | re.DOTALL,
)
_FACT = re.compile(r"[$€£¥]\s?\d|\d\s?(?:%|percent\b|(?:million|billion|trillion|bn|mln)\b)", re.IGNORECASE)

# Deeper open-element stacks than this are flattened before parsing: the HTML5 tree builder checks the stack on many
# start tags, so '<div>x' * 20000 parsed in O(depth²) (1.2 s at 120 KB, 28 s at 480 KB). Real articles nest < 40 deep.
MAX_HTML_DEPTH = 256
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^<>]*?(/?)>")
_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"]
)
# Start tags that close an open element of the same kind (an unclosed <p>, <li> ... does not nest).
_SELF_CLOSING_SIBLINGS = frozenset(["p", "li", "dt", "dd", "tr", "td", "th", "option"])


def limit_nesting(markup: str, max_depth: int = MAX_HTML_DEPTH) -> str:
    """Drop the start tags that would open elements deeper than `max_depth` (their text stays). Linear time; markup
    within the limit is returned unchanged."""
    stack: list[str] = []
    drop: list[tuple[int, int]] = []
    for m in _TAG.finditer(markup):
        closing, tag, self_closed = m.group(1), m.group(2).lower(), m.group(3)
        if tag in _VOID or self_closed:
            continue
        if closing:
            # Close up to the nearest open element of that name within a bounded look-back (the stack is capped).
            for i in range(len(stack) - 1, -1, -1):
                if stack[i] == tag:
                    del stack[i:]
                    break
            continue
        if tag in _SELF_CLOSING_SIBLINGS and stack and stack[-1] == tag:
            continue
        if len(stack) >= max_depth:
            drop.append(m.span())
            continue
        stack.append(tag)
    if not drop:
        return markup
    out, pos = [], 0
    for a, b in drop:
        out.append(markup[pos:a])
        pos = b
    out.append(markup[pos:])
    return "".join(out)


def normalise_text(text: str) -> str:
    """Repair mojibake, straighten quotes, turn exotic spaces into spaces, drop zero-width characters."""
    if not text:
        return ""
    if text.isascii():
        # No mojibake, quotes or exotic spaces to fix in ASCII; ftfy's per-call cost dominated many short paragraphs.
        # What ftfy would still do there: decode leftover (double-escaped) entities, drop control characters.
        if "&" in text and "<" not in text:
            text = html.unescape(text)
            if not text.isascii():
                return normalise_text(text)
        return text.translate(_TRANSLATE)
    text = ftfy.fix_text(text, normalization="NFC")
    text = text.translate(_TRANSLATE)
    return unicodedata.normalize("NFC", text)


def _tidy_paragraph(text: str) -> str:
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def is_boilerplate(paragraph: str) -> bool:
    """A body paragraph that is site furniture with high confidence (and states no figure)."""
    return bool(LINK_LINE.match(paragraph)) or (bool(FURNITURE.match(paragraph)) and not _FACT.search(paragraph))


def html_to_paragraphs(markup: str, budget: Budget | None = None) -> list[str]:
    """Split HTML into its text paragraphs: one per block element, <br> kept as a line break, cells joined by |.
    Linear in the markup's size; `budget` is checked as the walk goes."""
    if "<" not in markup:
        return [p for p in (_tidy_paragraph(html.unescape(x)) for x in re.split(r"\n\s*\n", markup)) if p]
    tree = LexborHTMLParser(limit_nesting(markup))
    tree.strip_tags(DROP_TAGS)
    root = tree.body or tree.root
    if root is None:
        return []
    paragraphs: list[str] = []
    buf: list[str] = []
    block = cell = -1
    # The nearest block and cell ancestor of each element, filled in document order (a parent comes before its
    # children), so a text node finds its paragraph in O(1) rather than by walking up (quadratic when deep).
    # Memory ids, because selectolax makes a new wrapper object per access.
    enclosing: dict[int, tuple[int, int]] = {}
    for seen, node in enumerate(root.traverse(include_text=True)):
        if budget is not None and not seen % 4096:
            budget.check("clean")
        tag = node.tag
        if tag == "br":
            buf.append("\n")
            continue
        parent = node.parent
        outer = enclosing.get(parent.mem_id, (0, 0)) if parent is not None else (0, 0)
        if tag != "-text":
            enclosing[node.mem_id] = (
                node.mem_id if tag in BLOCK_TAGS else outer[0],
                node.mem_id if tag in CELL_TAGS else outer[1],
            )
            continue
        text = node.text_content or ""
        if not text.strip():
            if buf and not buf[-1].endswith((" ", "\n")):
                buf.append(" ")
            continue
        node_block, node_cell = outer
        if node_block != block:
            if buf:
                paragraphs.append("".join(buf))
            buf, block, cell = [], node_block, node_cell
        elif node_cell != cell:
            buf.append(" | ")
            cell = node_cell
        buf.append(text)
    if buf:
        paragraphs.append("".join(buf))
    return [p for p in map(_tidy_paragraph, paragraphs) if p]


def _paragraphs(markup: str, budget: Budget | None) -> list[str]:
    out = []
    for p in html_to_paragraphs(markup, budget):
        if budget is not None:
            budget.check("clean")
        p = _tidy_paragraph(normalise_text(p))
        if p:
            out.append(p)
    return out


def clean_html(markup: str, budget: Budget | None = None) -> str:
    """HTML (or plain text) body → clean text: paragraphs separated by a blank line, boilerplate paragraphs removed."""
    return "\n\n".join(p for p in _paragraphs(markup, budget) if not is_boilerplate(p))


def clean_inline(markup: str, budget: Budget | None = None) -> str:
    """Headlines and summaries: the same cleaning flattened to one paragraph, with no boilerplate rule (a headline
    is the news, whatever words it uses)."""
    return " ".join(" ".join(_paragraphs(markup, budget)).split())


def clean_article(article: NewsArticle, budget_s: float | None = None) -> CleanArticle | Quarantined:
    """Clean headline, summary and body; an article left with no headline text is quarantined. Past `budget_s`
    seconds of work the article is given up with `BudgetExceeded`."""
    budget = Budget(budget_s) if budget_s else None
    headline = clean_inline(article.headline, budget)
    if not headline:
        return Quarantined(
            origin=f"article:{article.id}",
            step="clean",
            reason="headline is empty after cleaning",
            raw=article.model_dump_json()[:2000],
        )
    summary = clean_inline(article.summary, budget)
    body = clean_html(article.content, budget) if article.content else ""
    if summary and body.startswith(summary):
        summary = ""  # many feeds repeat the summary as the first paragraph: index it once
    return CleanArticle(article=article, headline=headline, summary=summary, body=body)
