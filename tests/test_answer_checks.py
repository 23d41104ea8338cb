"""Answer guards: stub, empty and looping answers, citations, invented figures and news that does not cover the
question; pure functions first, then the chain with a scripted LLM (real store and retriever)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from finassist.answer_checks import (
    Figure,
    attribute,
    figures,
    figures_off_question,
    fix_citations,
    has_content,
    invented_names,
    is_looping,
    key_sentence,
    only_echoes,
    trim_loop,
)
from finassist.answer_review import review
from finassist.coverage import coverage, names_in
from finassist.domain import Hit
from finassist.llm import LLM, Generation, GenerationParams, Message, ModelInfo
from finassist.symbols import load_aliases

from conftest import article, ingest_rows

STUB = "The answer to this question is:"


def hit(rank: int, headline: str, text: str, symbols: list[str]) -> Hit:
    when = datetime(2026, 10, 1, tzinfo=UTC)
    return Hit(article_id=str(rank), headline=headline, score=0.5, created_at=when, updated_at=when,
               symbols=symbols, text=text, chunk_index=0)


VOLTRIX = hit(
    1,
    "Voltrix Raises Fiscal 2027 Revenue Outlook To $17.35B-$18.39B",
    "Voltrix Semiconductor (NASDAQ:VLTX) reported fiscal fourth quarter revenue of $4.30 billion after the closing "
    "bell on Thursday, September 24, ahead of the $4.23 billion analysts had expected. Benzinga Pro subscribers get "
    "real-time alerts on VLTX and every ticker in this story.",
    ["VLTX"],
)
PIZZA = hit(2, "Greenbarrow Foods Raises Prices On Frozen Pizza",
            "Greenbarrow Foods will raise frozen pizza prices by 6% in January.", ["GRNB"])
HITS = [VOLTRIX, PIZZA]


# --- stubs, loops, empties ------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["", "   ", STUB, "[1]", "Answer:", "The answer to this question is: [3]"])
def test_an_answer_without_content_becomes_the_best_sources_key_sentence(answer):
    out = review(answer, "What revenue did Voltrix report for the fourth quarter?", HITS)
    assert out.fallback and "$4.30 billion" in out.text and out.text.endswith("[1]")


def test_an_answer_that_only_repeats_the_question_becomes_the_key_sentence():
    question = "What revenue did Voltrix report for the fourth quarter?"
    for echo in ("Voltrix reported revenue for the fourth quarter:", "The fourth quarter revenue Voltrix reports [1]."):
        assert only_echoes(echo, question)
        out = review(echo, question, HITS)
        assert out.fallback and "$4.30 billion" in out.text and "only the question's own words" in out.notes[-1]
    # A figure, or one word the question does not have, is something said: the answer stays.
    for answer in ("Voltrix reported $4.30 billion for the fourth quarter [1].", "Voltrix beat expectations [1].",
                   "The news does not cover Voltrix's fourth quarter."):
        assert not only_echoes(answer, question)
        assert not review(answer, "What did Voltrix report for the fourth quarter?", HITS).fallback


@pytest.mark.parametrize("question", [
    "How much revenue did Voltrix report for the fourth quarter?",
    "What revenue did Voltrix report for the fourth quarter?",
    "Did Voltrix beat estimates in the fourth quarter? What revenue did it report?",
])
def test_a_question_asking_for_an_amount_answered_without_a_number_becomes_the_key_sentence(question):
    out = review("Voltrix reported strong revenue, ahead of what analysts expected [1].", question, HITS)
    assert out.fallback and "$4.30 billion" in out.text and "asking for an amount" in out.notes[-1]
    # A number in the answer, or a question that asks for no amount, leaves the answer alone.
    assert not review("Voltrix reported $4.30 billion [1].", question, HITS).fallback
    assert not review("Voltrix reported strong revenue, ahead of what analysts expected [1].",
                      "What did Voltrix say about its fourth quarter?", HITS).fallback
    # An answer saying the news does not give the amount is left alone (the figure may not be in the news).
    assert not review("The news does not say what revenue Voltrix reported.", question, HITS).fallback
    assert review("The company did not provide a detailed answer to this question.", question, HITS).fallback


def test_an_answer_that_copies_the_prompts_news_block_falls_back_to_the_key_sentence():
    copied = f'<news id="5" date="2026-09-24" symbols="VLTX">\n{VOLTRIX.headline}'
    out = review(copied, "What revenue did Voltrix report for the fourth quarter?", HITS)
    assert out.fallback and "<news" not in out.text and "$4.30 billion" in out.text


def test_no_answer_and_no_news_still_says_something():
    out = review("", "What did Voltrix report?", [])
    assert "does not cover" in out.text


def test_a_stub_lead_in_is_removed_when_an_answer_follows():
    out = review(f"{STUB} Voltrix reported revenue of $4.30 billion [1].", "What did Voltrix report?", HITS)
    assert out.text == "Voltrix reported revenue of $4.30 billion [1]." and not out.fallback


def test_the_stub_has_no_content_but_a_short_fact_has():
    assert not has_content(STUB) and not has_content("")
    assert has_content("Revenue: $4.30 billion") and has_content("Dana Okafor leads Voltrix.")


def test_a_looping_answer_is_cut_where_it_starts_repeating():
    loop = "Voltrix grew revenue to $4.30 billion, a 1.0% increase, " + "a 1.0% increase, " * 6
    assert is_looping(loop)
    assert trim_loop(loop) == "Voltrix grew revenue to $4.30 billion, a 1.0% increase"


def test_a_repeated_sentence_is_dropped_and_the_sentences_before_it_kept():
    said = "Closing is due in 2027. The deal is worth $15.73 billion."
    assert trim_loop(f"{said} The deal is worth $15.73 billion. The deal is worth $15.73 billion.") == said


def test_an_answer_that_repeats_a_phrase_twice_is_not_a_loop():
    assert not is_looping("Revenue was $4.30 billion against $4.23 billion expected, and revenue was up on the year.")


def test_a_loop_with_nothing_before_it_falls_back_to_the_news():
    out = review("the the the the the the the the the the the the", "What revenue did Voltrix report?", HITS)
    assert out.fallback and "[1]" in out.text


# --- citations and figures ------------------------------------------------------------------------------------


def test_citations_that_point_to_no_source_are_removed_and_the_rest_normalised():
    text, cited, dropped = fix_citations("Revenue was $4.30 billion [1][3], up [news 2]. See [1, 7].", 2)
    assert text == "Revenue was $4.30 billion [1], up [2]. See [1]." and cited == [1, 2] and dropped == 2


def test_a_sentence_stating_a_sources_figure_gets_that_sources_marker():
    out = review("Voltrix reported revenue of 4.3 billion dollars. Pizza costs 6% more.", "Voltrix?", HITS)
    assert out.text == "Voltrix reported revenue of 4.3 billion dollars [1]. Pizza costs 6% more [2]."


def test_a_sentence_without_figures_is_attributed_by_the_names_that_tell_the_sources_apart():
    ceo = hit(3, "Voltrix names a new CEO", "Voltrix Semiconductor said Dana Okafor will become chief executive.",
              ["VLTX"])
    sources = [VOLTRIX, PIZZA, ceo]
    out = review("The CEO of Voltrix Semiconductor is Dana Okafor. Greenbarrow raises pizza prices.", "Who?", sources)
    assert out.text == "The CEO of Voltrix Semiconductor is Dana Okafor [3]. Greenbarrow raises pizza prices [2]."
    # A name every source mentions tells nothing: no marker (and names no source has get none either).
    both = [VOLTRIX, hit(2, "Voltrix hires", "Voltrix Semiconductor is hiring in Austin.", ["VLTX"])]
    assert review("Voltrix Semiconductor is a chip maker.", "What is Voltrix?", both).text == (
        "Voltrix Semiconductor is a chip maker.")
    assert attribute("Marcus Feld runs it.", HITS) == "Marcus Feld runs it."  # (the review replaces it: made up)
    only = review("Voltrix makes chips for data centers.", "Who?", [VOLTRIX]).text
    assert only == "Voltrix makes chips for data centers [1]."  # the only source


def test_an_answer_whose_every_figure_no_source_states_is_replaced_by_the_news():
    out = review("Voltrix reported revenue of $5.1 billion.", "What revenue did Voltrix report?", HITS)
    assert out.fallback and "$4.30 billion" in out.text


def test_an_answer_stating_only_figures_of_news_not_about_the_question_is_replaced_by_the_news():
    question = "By how much will Greenbarrow raise frozen pizza prices?"
    wrong = review("Greenbarrow will raise frozen pizza prices by $4.30 billion [1].", question, HITS)
    assert wrong.fallback and "6%" in wrong.text and wrong.text.endswith("[2]")
    assert "not about the question" in wrong.notes[-1]
    right = review("Greenbarrow will raise frozen pizza prices by 6% in January.", question, HITS)
    assert not right.fallback and right.text.endswith("[2].")
    # One figure from the sentence about the question is enough: the others may be context.
    mixed = review("Prices rise 6%, while Voltrix made $4.30 billion.", question, HITS)
    assert not mixed.fallback


def test_an_answer_naming_someone_no_source_mentions_is_replaced_by_the_news():
    ceo = hit(3, "Voltrix names a new CEO", "Voltrix Semiconductor said Dana Okafor will become chief executive.",
              ["VLTX"])
    question = "Who is the CEO of Voltrix Semiconductor?"
    made_up = review("The CEO of Voltrix Semiconductor is Marcus Feld.", question, [ceo])
    assert made_up.fallback and "Dana Okafor" in made_up.text and made_up.text.endswith("[1]")
    assert "names that no source mentions" in made_up.notes[-1]
    assert invented_names("The CEO of Voltrix Semiconductor is Marcus Feld.", question, [ceo]) == {"Marcus", "Feld"}
    # Names the news gives (in any case, possessive or not), and a sentence's capitalised first word, are not made up.
    for answer in ("Voltrix's Chief Executive is Dana Okafor.", "Currently, Okafor leads Voltrix Semiconductor."):
        assert not invented_names(answer, question, [ceo]) and not review(answer, question, [ceo]).fallback


def test_an_answer_naming_only_someone_from_news_not_about_the_question_is_replaced_by_the_news():
    ceo = hit(3, "Voltrix keeps its chief", "Voltrix Semiconductor said Dana Okafor will remain chief executive. "
              "Larchmont Brothers analyst Marcus Feld wrote that investors should keep expectations in check.",
              ["VLTX"])
    question = "Who is the CEO of Voltrix Semiconductor?"
    wrong = review("The CEO of Voltrix Semiconductor is Marcus Feld.", question, [ceo])
    assert wrong.fallback and "Dana Okafor" in wrong.text and "names only from news not about" in wrong.notes[-1]
    right = review("Dana Okafor is the chief executive of Voltrix.", question, [ceo])
    assert not right.fallback and right.text == "Dana Okafor is the chief executive of Voltrix [1]."


def test_an_abbreviation_in_the_question_meets_the_words_it_stands_for_in_the_news():
    ceo = hit(1, "Voltrix", "Voltrix employs about 18,400 people. Dana Okafor is Voltrix's chief executive.",
              ["VLTX"])
    assert key_sentence("Who is the CEO of Voltrix?", [ceo]) == (1, "Dana Okafor is Voltrix's chief executive.")


def test_figures_near_the_best_sentence_count_as_about_the_question():
    ceo = hit(3, "Voltrix names a new CEO", "Voltrix Semiconductor said Dana Okafor will become chief executive. "
              "Voltrix pays Okafor $2.1 million to become its chief.", ["VLTX"])
    question = "Who will become Voltrix's chief executive?"
    # "$2.1 million" comes from a sentence with one question word less than the best one: within the slack.
    assert not figures_off_question("Dana Okafor, who was paid $2.1 million, will lead it.", question, [ceo])
    assert figures_off_question("Dana Okafor, paid $2.1 million, will lead it.", question, [ceo], slack=0.25)


def test_figures_are_money_percentages_and_counts_not_quarters_votes_or_markers():
    assert figures("Q3 revenue $4.30 billion (4.3B), up 2.7%, 316,518 cars, a 10-2 vote [1] in 2026") == [
        Figure(4.3, "billion"), Figure(4.3, "billion"), Figure(2.7, "%"), Figure(316518.0, ""),
    ]


def test_the_key_sentence_has_the_question_words_and_a_figure_not_boilerplate():
    rank, sentence = key_sentence("What revenue did Voltrix report for the quarter?", HITS)
    assert rank == 1 and sentence.startswith("Voltrix Semiconductor (NASDAQ:VLTX) reported fiscal fourth quarter")


# --- coverage -------------------------------------------------------------------------------------------------


def test_a_company_the_news_has_nothing_on_is_not_covered():
    cov = coverage("What was Apple's revenue last quarter?", HITS, load_aliases())
    assert not cov.covered and cov.missing == ["Apple (AAPL)"]


def test_a_name_no_article_mentions_is_not_covered():
    cov = coverage("What is Oxbow Industries' revenue?", HITS, load_aliases())
    assert not cov.covered and cov.missing == ["Oxbow Industries"]


def test_a_question_partly_about_the_news_is_covered_and_names_what_is_missing():
    cov = coverage("What is new at $ZZZZ and in frozen pizza?", HITS, load_aliases())
    assert cov.covered and cov.missing == ["ZZZZ"]


def test_a_company_in_the_news_is_covered():
    for question in ("Who is the CEO of Voltrix Semiconductor?", "How did VLTX do?", "What revenue did Voltrix post?"):
        cov = coverage(question, HITS, load_aliases())
        assert cov.covered and not cov.missing, question


def test_words_in_the_missing_companys_own_clause_do_not_make_other_news_cover_it():
    cars = [hit(1, "Riverment Q3", "Vehicle deliveries totaled 316,518, including 47,295 Meridale EVs.", ["RVMT"])]
    cov = coverage("How many vehicles did Tesla deliver last quarter?", cars, load_aliases())
    assert not cov.covered and cov.missing == ["Tesla (TSLA)"]


def test_the_fallback_quotes_nothing_that_shares_only_finance_words_with_the_question():
    assert key_sentence("What revenue did Oxbow report?", HITS) is None
    assert "does not cover" in review("", "What revenue did Oxbow report?", HITS).text


def test_a_capitalised_word_beside_a_covered_company_is_not_reported_missing():
    for question in ("Is Voltrix a Buy?", "Compare Voltrix with Oxbow Industries."):
        cov = coverage(question, HITS, load_aliases())
        assert cov.covered and not cov.missing, question


def test_no_news_at_all_is_not_covered():
    assert not coverage("What did Voltrix report?", [], load_aliases()).covered


def test_question_words_and_months_are_not_names():
    assert names_in("What did Tellwave's CEO say in October about Skyreach Towers?") == ["Tellwave", "Skyreach Towers"]


# --- the chain, with a scripted LLM ---------------------------------------------------------------------------


class ScriptedLLM(LLM):
    """Answers every prompt with one fixed text; counts its calls."""

    def __init__(self, answer: str):
        self.answer = answer
        self.calls = 0
        self.info = ModelInfo(backend="fake", model="scripted", adapter=None, prompt_version=None,
                              context_window=8192)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"]) for m in messages) // 4

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str | Generation]:
        self.calls += 1
        if self.answer:
            yield self.answer
        yield Generation(self.answer, prompt_tokens=100, completion_tokens=len(self.answer.split()))


@pytest.fixture(scope="module")
def chain_parts(tmp_path_factory, embedder):
    from finassist.config import Settings
    from finassist.retrieval import Retriever
    from finassist.store import close_stores, open_store

    home = tmp_path_factory.mktemp("answer-checks") / "home"
    settings = Settings(home=home, tracing=False)
    rows = [
        article(1, headline="Riverment Motors Recalls 40,000 Sedans", symbols=["RVMT"],
                content="<p>Riverment Motors recalled 40,000 sedans over a brake-sensor fault.</p>"),
        article(2, headline="Greenbarrow Foods Raises Prices On Frozen Pizza", symbols=["GRNB"],
                content="<p>Greenbarrow Foods will raise frozen pizza prices by 6% in January.</p>"),
    ]
    ingest_rows(settings, rows, home.parent / "news.jsonl")
    yield settings, Retriever(open_store(settings), embedder)
    close_stores()


def ask(chain_parts, answer: str, question: str, **overrides):
    from finassist.inference.chain import AskInput, RAGChain

    settings, retriever = chain_parts
    llm = ScriptedLLM(answer)
    chain = RAGChain(retriever, llm, settings.model_copy(update=overrides), load_aliases())
    return chain.ask(AskInput(question=question)), llm


@pytest.mark.slow
def test_the_chain_replaces_a_stub_answer_with_the_sources_key_sentence(chain_parts):
    answer, _ = ask(chain_parts, STUB, "How many sedans is Riverment recalling?")
    assert "40,000 sedans" in answer.answer and answer.answer.endswith("[1]")
    assert [s.article_id for s in answer.sources] == ["1"]
    assert any("quoted the news" in note for note in answer.notes)


@pytest.mark.slow
def test_the_chain_says_the_news_does_not_cover_a_company_it_has_nothing_on(chain_parts):
    answer, llm = ask(chain_parts, "Riverment recalled 40,000 sedans [1].", "What was Apple's revenue last quarter?")
    assert answer.answer.startswith("The news I have does not cover Apple (AAPL)")
    assert llm.calls == 0 and answer.sources == [] and "40,000" not in answer.answer


@pytest.mark.slow
def test_the_chain_removes_citations_of_sources_it_did_not_return(chain_parts):
    answer, _ = ask(chain_parts, "Riverment recalled 40,000 sedans [1][4].", "Why is Riverment recalling cars?")
    assert answer.answer == "Riverment recalled 40,000 sedans [1]." and len(answer.sources) == 1


@pytest.mark.slow
def test_the_chain_answers_the_covered_part_and_names_the_missing_company(chain_parts):
    answer, llm = ask(chain_parts, "Frozen pizza gets 6% dearer [1].", "What is new at $ZZZZ and in frozen pizza?")
    assert answer.answer == "The news I have does not cover ZZZZ. Frozen pizza gets 6% dearer [1]."
    assert llm.calls == 1 and answer.sources


@pytest.mark.slow
def test_with_checks_off_the_chain_returns_the_model_text_as_it_is(chain_parts):
    answer, llm = ask(chain_parts, STUB, "What was Apple's revenue last quarter?", answer_checks=False)
    assert answer.answer == STUB and llm.calls == 1


# --- the transformers backend's completion-only no-repeat rule ------------------------------------------------


def test_no_repeat_bans_repeating_the_answers_own_ngrams_but_not_the_prompts():
    import torch

    from finassist.llm.local import _NoRepeatInCompletion

    ban = _NoRepeatInCompletion(3, prompt_len=3)
    # Prompt [1, 2, 9]; the answer so far [1, 2, 3, 1, 2]: a 3 next would repeat the answer's "1 2 3".
    scores = ban(torch.tensor([[1, 2, 9, 1, 2, 3, 1, 2]]), torch.zeros(1, 10))
    assert scores[0, 3] == -float("inf") and torch.isfinite(scores[0, [0, 1, 2, 4, 9]]).all()
    # The answer [1, 2] may go on with 9 although the prompt said "1 2 9": the news must stay copyable.
    scores = ban(torch.tensor([[1, 2, 9, 1, 2]]), torch.zeros(1, 10))
    assert torch.isfinite(scores).all()


@pytest.mark.slow
def test_each_served_answer_is_graded_for_groundedness_into_a_rolling_gauge(chain_parts):
    """Serving scores every answer from news with the training evaluation's metric; answers without news (the
    not-covered reply) are not graded; /metrics carries the share of the recent ones and how many that is."""
    from prometheus_client import generate_latest

    from finassist.inference.chain import AskInput, RAGChain
    from finassist.inference.monitoring import Metrics

    settings, retriever = chain_parts
    metrics, records = Metrics(), []

    def finished(record):
        records.append(record)
        metrics.observe_run(record)

    for text, question in [
        ("Riverment recalled 40,000 sedans [1].", "How many sedans is Riverment recalling?"),  # grounded
        # one invented number beside a true one: the checks keep it (only all-invented figures are replaced)
        ("Riverment recalled 40,000 sedans, costing $90 million [1].", "How many sedans is Riverment recalling?"),
        ("Greenbarrow raises pizza prices by 6% [1].", "What is Greenbarrow doing to prices?"),  # grounded
        ("Riverment recalled 40,000 sedans [1].", "What was Apple's revenue last quarter?"),  # not covered
    ]:
        chain = RAGChain(retriever, ScriptedLLM(text), settings, load_aliases(), on_finish=finished)
        chain.ask(AskInput(question=question))
    assert [r.grounded for r in records] == [True, False, True, None]
    text = generate_latest(metrics.registry).decode()
    assert 'finassist_answers_graded_total{grounded="true"} 2.0' in text
    assert 'finassist_answers_graded_total{grounded="false"} 1.0' in text
    assert "finassist_groundedness 0.666" in text and "finassist_groundedness_answers 3.0" in text
