"""Deterministic synthetic news for tests (the bundled sample data is for demos; tests make their own)."""

from __future__ import annotations

import random

COMPANIES = [
    ("NVLT", "Novalith Semiconductors", "chips"),
    ("HRBR", "Harborline Bank", "deposits"),
    ("QNTM", "Quantum Orchard Foods", "orchards"),
    ("SKYW", "Skywell Aerospace", "satellites"),
    ("GRNX", "Greenix Energy", "solar farms"),
]


def paragraph(rng: random.Random, name: str, thing: str) -> str:
    n = rng.randint(2, 5)
    sentences = [
        f"{name} said demand for its {thing} rose {rng.randint(2, 40)} percent in the quarter.",
        f"Analysts at Example Capital set a price target of ${rng.randint(20, 400)} on the stock.",
        f"Operating margin came in at {rng.randint(5, 45)}.{rng.randint(0, 9)} percent.",
        f"The board approved a buyback of ${rng.randint(1, 9)} billion over {rng.randint(2, 4)} years.",
        f"Management expects revenue of ${rng.randint(1, 30)}.{rng.randint(0, 9)} billion next year.",
        f"Shares moved {rng.choice(['up', 'down'])} {rng.randint(1, 12)} percent in early trading.",
    ]
    return " ".join(rng.choice(sentences) for _ in range(n))


def make_articles(n: int, seed: int = 7, start_id: int = 1000, long_every: int = 5) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sym, name, thing = COMPANIES[i % len(COMPANIES)]
        paras = 30 if long_every and i % long_every == 0 else rng.randint(0, 3)
        content = "".join(f"<p>{paragraph(rng, name, thing)}</p>" for _ in range(paras))
        day, hour = 1 + i % 28, 9 + i % 8
        ts = f"2026-09-{day:02d}T{hour:02d}:{i % 60:02d}:00Z"
        out.append(
            {
                "id": start_id + i,
                "headline": f"{name} update number {i}: {thing} outlook",
                "summary": f"{name} ({sym}) news item {i}." if i % 2 else "",
                "content": content,
                "author": "Test Desk",
                "url": f"https://news.example.com/{start_id + i}",
                "source": "test",
                "symbols": [sym],
                "created_at": ts,
                "updated_at": ts,
            }
        )
    return out


def voltrix_guidance(article_id: int, **overrides) -> dict:
    """A fresh Voltrix guidance story (tests ask about it by name and by ticker)."""
    from conftest import article

    return article(
        article_id,
        headline="Voltrix Raises Full-Year Revenue Guidance To $18 Billion",
        content="<p>Voltrix Semiconductor raised its full-year revenue guidance to $18 billion on strong demand "
        "for its Helion accelerators.</p>",
        symbols=["VLTX"],
        created_at="2026-11-20T14:00:00Z",
        updated_at="2026-11-20T14:00:00Z",
        **overrides,
    )


def brookward_dividend(article_id: int, **overrides) -> dict:
    """A Brookward dividend-cut story, a day older than `voltrix_guidance`."""
    from conftest import article

    return article(
        article_id,
        headline="Brookward Financial Cuts Quarterly Dividend By 20%",
        content="<p>Brookward Financial cut its quarterly dividend by 20% to preserve capital after loan losses.</p>",
        symbols=["BKWD"],
        created_at="2026-11-19T12:00:00Z",
        updated_at="2026-11-19T12:00:00Z",
        **overrides,
    )


FILING_REVENUE = {
    "ACME": (412, 388, 351, 330, 301),
    "BOLT": (97, 91, 88, 80, 77),
    "CRUX": (1204, 1150, 1099, 1020, 987),
}
FILING_YEARS = (2021, 2020, 2019)


def filing_page(company: str, year: int) -> tuple[str, str]:
    """(title, text) of a 10-K revenue page as annual reports print it: this year and the two before side by side,
    and the discussion measured against the year before, which it names more often than its own (so a question
    about fiscal 2020 shares more words with the FY2021 filing than with the FY2020 one)."""
    figures = FILING_REVENUE[company][2021 - year : 2021 - year + 3]
    prior = year - 1
    title = f"{company}_{year}_10K page 41"
    body = (
        f"Revenue | {year} | {prior} | {year - 2}\n"
        f"Total revenue | ${figures[0]} million | ${figures[1]} million | ${figures[2]} million\n"
        f"Total revenue rose from ${figures[1]} million in {prior}, when revenue had grown on {prior} orders; "
        f"compared with {prior}, volumes were higher, and {prior} included a one-time gain. Revenue by segment is "
        "discussed under Results of Operations."
    )
    return title, body
