"""Finance identifiers meet the words a person types, checked through qdrant-edge's own BM25 tokenizer."""

import pytest
from qdrant_edge import Bm25

from finassist.textsearch import finance_terms, number_token, search_text

BM25 = Bm25()


def tokens(text: str) -> set[int]:
    return set(BM25.embed_query(text).indices)


@pytest.mark.parametrize(
    ("document", "typed", "word"),
    [
        ("ACME_2021_10K page 12", "ACME 2021 10-K", "10k"),
        ("Annual report FY2022", "revenue in 2022", "2022"),
        ("Annual report FY22", "fiscal 2022 revenue", "fy2022"),
        ("Berkshire BRK.B shares", "BRKB price", "brkb"),
        ("Berkshire BRK-B shares", "BRK.B price", "brkb"),
        ("Filed its 10-K on Monday", "ACME 10K", "10k"),
        ("Results for 3Q23", "Q3 2023 results", "q3"),
        ("Results for 3Q23", "Q3 2023 results", "2023"),
        ("third quarter of 2023 revenue", "Q3 revenue", "q3"),
        ("Deal worth $2.5B", "2.5 billion deal", "billion"),
        ("Revenue of 1,234,567 units", "1234567 units", "1234567"),
        ("Total sales | $1,496.50 | $1,202.9", "sales of 1496.5", "1496p5"),
        ("EPS rose to $4.30", "EPS of 4.3", "4p3"),
        ("Margin was 84.0% in 2019", "a margin of 84%", "84"),
    ],
)
def test_the_spelling_a_person_types_meets_the_documents_spelling(document, typed, word):
    [token] = tokens(word)
    assert token in tokens(search_text(document))
    assert token in tokens(search_text(typed))


@pytest.mark.parametrize(
    ("document", "typed"),
    [("Annual report FY2022", "2022"), ("BRK.B", "BRKB"), ("10-K", "10K"), ("Deal worth $2.5B", "2.5 billion")],
)
def test_without_the_expansion_the_tokenizer_alone_misses_these(document, typed):
    # Guards the reason this module exists: the plain word tokenizer gives these pairs no common distinctive token.
    shared = tokens(document) & tokens(typed)
    assert shared <= tokens("2 5")  # at most the split-off number pieces


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ACME_2021_10K page 12", ["ACME", "2021", "10K"]),
        ("Buy $TSLA now", ["TSLA"]),
        ("$BRK.B", ["BRK.B", "BRKB"]),
        ("BRK.B and BRK-B and BRK/B", ["BRKB", "BRK.B"]),
        ("FY2022", ["2022"]),
        ("FY 22 and FY-23", ["FY2022", "2022", "FY2023", "2023"]),
        ("fiscal year 2021", ["FY2021"]),
        ("Q3 2023", []),
        ("Q3-23", ["Q3", "2023"]),
        ("Q3'23", ["Q3", "2023"]),
        ("3Q23", ["Q3", "2023"]),
        ("Q4 FY24", ["2024", "FY2024"]),
        ("third quarter of 2022", ["Q3"]),
        ("10-K, 10-Q, 8-K, 20-F, S-1, 10-K/A", ["10K", "10Q", "8K", "20F", "S1"]),
        ("$2.54 billion", []),
        ("$2.5B and $300M and 40mn", ["2.5", "billion", "300", "million", "40"]),
        ("1,234,567.5 shares", []),  # one token already (search_text's number_token)
    ],
)
def test_finance_terms(text, expected):
    assert finance_terms(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "HQ3 and Q33 and Q5 and FAQ3",  # "Q3" inside words, or no quarter at all
        "Q3 20 analysts",  # a bare two-digit number after a quarter is no year
        "priced at $2022",  # a price, not a year
        "FY2022.5 and FY2022%",
        "the U.S. economy",  # not a share class
        "5b shares and a 5m run",  # a one-letter scale needs a dollar sign
        "version 1.10-K",
        "plain words only",
    ],
)
def test_non_matches_add_nothing_misleading(text):
    assert not {"Q3", "2022", "2020", "US", "FY2022", "5 billion", "10K"} & set(finance_terms(text))


def test_the_original_text_is_kept_and_expansions_are_appended():
    text = "ACME_2021_10K page 12: $TSLA"
    out = search_text(text)
    assert out.startswith(text + "\n")
    assert out.splitlines()[-1] == "ACME 2021 10K TSLA"
    assert search_text("nothing special here") == "nothing special here"


def test_query_in_2022_hits_an_fy2022_document_through_bm25():
    doc = tokens(search_text("ACME FY2022 annual report"))
    assert tokens("2022") <= doc
    assert not tokens("2022") <= tokens("ACME FY2022 annual report")


def test_long_text_is_linear():
    import time

    text = "Revenue rose 12% to $2.5B in Q3 2023 (FY2023), per the 10-K; BRK.B 1,234 " * 20_000
    t = time.perf_counter()
    search_text(text)
    assert time.perf_counter() - t < 5


@pytest.mark.parametrize(
    ("number", "token"),
    [("1,496.5", "1496p5"), ("1,496.50", "1496p5"), ("84.0", "84"), ("4.30", "4p3"), ("0.5", "0p5"),
     ("1,234,567", "1234567"), ("12.00", "12")],
)
def test_a_number_is_one_token_however_it_is_grouped_or_padded(number, token):
    assert number_token(number) == token
    assert search_text(f"worth ${number} here") == f"worth ${token} here"


def test_a_numbers_pieces_no_longer_match_other_numbers():
    # Split at commas and points, "$1,452.4" gave the tokens 1 / 452 / 4: a question about 452 employees matched it.
    table = "Fixed Price | $ 1,452.4 | $ 1,146.2 | $ 1,036.9"
    assert not tokens(search_text(table)) & tokens(search_text("How many of the 452 employees left?"))
    assert tokens(table) & tokens("How many of the 452 employees left?")  # what the plain tokenizer did


@pytest.mark.parametrize("text", ["version 1.2.3", "on 12.31.2019", "IP 10.0.0.1", "2018-2019", "Q3 2023"])
def test_dotted_identifiers_and_plain_integers_are_left_alone(text):
    assert search_text(text).splitlines()[0] == text


def _stop(word: str) -> bool:
    from finassist.store.sparse import is_stopword

    return is_stopword(word)


def test_word_pairs_skip_stopwords_and_never_cross_a_cell_a_sentence_or_a_number():
    from finassist.textsearch import word_pairs

    assert word_pairs("What is the cost of revenue in 2019?", _stop) == ["costrevenue"]
    assert word_pairs("Total sales | $1496p5\nGross profit | 830", _stop) == ["totalsales", "grossprofit"]
    assert word_pairs("Revenue rose. Costs fell", _stop) == ["revenuerose", "costsfell"]
    assert word_pairs("Sales, margins", _stop) == []
    assert word_pairs("one", _stop) == [] and word_pairs("", _stop) == []


def test_the_sparse_leg_gets_the_pairs_and_the_plain_text_does_not():
    assert search_text("total sales", _stop) == "total sales\ntotalsales"
    assert search_text("total sales") == "total sales"  # without the encoder's stopwords: no pairs
