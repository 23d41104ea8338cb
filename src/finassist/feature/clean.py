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
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_TRANSLATE = {**_SPACES, **_INVISIBLE}

# Paragraphs that are site furniture, not news. Matched against a whole (normalised) paragraph.
BOILERPLATE = re.compile(
    r"^(?:"
    r"click here\b.{0,80}"
    r"|(?:read|see) (?:more|next|also)\b.{0,200}"
    r"|related(?: articles?| stories| news| links)?:.{0,200}"
    r"|(?:also )?read:.{0,200}"
    r"|.{0,40}benzinga pro\b.{0,300}"
    r"|this (?:article|story|content) (?:was|is) (?:generated|produced|written)\b.{0,300}"
    r"|(?:subscribe|sign up)\b.{0,150}"
    r"|(?:photo|image|video|chart)(?: by| courtesy| source)?:.{0,150}"
    r"|(?:follow|like) us on\b.{0,100}"
    r"|(?:©|copyright\b|\(c\)).{0,150}"
    r"|(?:don'?t miss|trending|advertisement|sponsored)\b.{0,120}"
    r"|(?:disclaimer|disclosure):.{0,600}"
    r")$",
    re.IGNORECASE | re.DOTALL,
)


def normalise_text(text: str) -> str:
    """Repair mojibake, straighten quotes, turn exotic spaces into spaces, drop zero-width characters."""
    if not text:
        return ""
    text = ftfy.fix_text(text, normalization="NFC")
    text = text.translate(_TRANSLATE)
    return unicodedata.normalize("NFC", text)


def _tidy_paragraph(text: str) -> str:
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def is_boilerplate(paragraph: str) -> bool:
    return bool(BOILERPLATE.match(paragraph))


def _nearest(node, tags: frozenset[str]) -> int:
    """Memory id of the nearest ancestor with one of `tags` (selectolax makes a new wrapper per access)."""
    while node is not None and node.tag not in tags:
        node = node.parent
    return 0 if node is None else node.mem_id


def html_to_paragraphs(markup: str) -> list[str]:
    """Split HTML into its text paragraphs: one per block element, <br> kept as a line break, cells joined by |."""
    if "<" not in markup:
        return [p for p in (_tidy_paragraph(html.unescape(x)) for x in re.split(r"\n\s*\n", markup)) if p]
    tree = LexborHTMLParser(markup)
    tree.strip_tags(DROP_TAGS)
    root = tree.body or tree.root
    if root is None:
        return []
    paragraphs: list[str] = []
    buf: list[str] = []
    block = cell = -1
    for node in root.traverse(include_text=True):
        if node.tag == "br":
            buf.append("\n")
            continue
        if node.tag != "-text":
            continue
        text = node.text_content or ""
        if not text.strip():
            if buf and not buf[-1].endswith((" ", "\n")):
                buf.append(" ")
            continue
        node_block = _nearest(node.parent, BLOCK_TAGS)
        node_cell = _nearest(node.parent, CELL_TAGS)
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


def clean_html(markup: str) -> str:
    """HTML (or plain text) → clean text: paragraphs separated by a blank line, boilerplate removed."""
    paragraphs = (_tidy_paragraph(normalise_text(p)) for p in html_to_paragraphs(markup))
    return "\n\n".join(p for p in paragraphs if p and not is_boilerplate(p))


def clean_inline(markup: str) -> str:
    """Headlines and summaries: the same cleaning, flattened to one paragraph."""
    return " ".join(clean_html(markup).split())


def clean_article(article: NewsArticle) -> CleanArticle | Quarantined:
    """Clean headline, summary and body; an article left with no headline text is quarantined."""
    headline = clean_inline(article.headline)
    if not headline:
        return Quarantined(
            origin=f"article:{article.id}",
            step="clean",
            reason="headline is empty after cleaning",
            raw=article.model_dump_json()[:2000],
        )
    summary = clean_inline(article.summary)
    body = clean_html(article.content) if article.content else ""
    if summary and body.startswith(summary):
        summary = ""  # many feeds repeat the summary as the first paragraph: index it once
    return CleanArticle(article=article, headline=headline, summary=summary, body=body)
