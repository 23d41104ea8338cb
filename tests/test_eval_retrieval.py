import json
import math

import pytest

from finassist.feature.evaluate import corpus_as_news, mrr_at_k, ndcg_at_k, recall_at_k

from conftest import finassist
from newsgen import FILING_REVENUE, FILING_YEARS, filing_page


def test_metrics_on_hand_computed_rankings():
    rel = {"a": 1, "b": 1}
    assert ndcg_at_k(["a", "b", "x"], rel, 10) == pytest.approx(1.0)
    # relevant at ranks 2 and 3: (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3))
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "b"], rel, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y"], rel, 10) == 0.0
    assert recall_at_k(["x", "a"], rel, 10) == 0.5
    assert recall_at_k(["x", "a", "b"], rel, 2) == 0.5  # b is past the cutoff
    assert mrr_at_k(["x", "y", "b"], rel, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "b"], rel, 2) == 0.0


def test_graded_relevance_rewards_the_better_document_first():
    rel = {"great": 2, "ok": 1}
    assert ndcg_at_k(["great", "ok"], rel, 10) > ndcg_at_k(["ok", "great"], rel, 10)


def test_untitled_documents_keep_exactly_their_text():
    doc = {"_id": "d1", "title": "", "text": " ".join(f"w{i}" for i in range(40))}
    news = corpus_as_news(doc)
    assert news["headline"] + " " + news["content"] == doc["text"]
    assert corpus_as_news({"_id": "d2", "title": "T", "text": "body"})["headline"] == "T"


def test_eval_retrieval_cli_scores_a_small_beir_set(tmp_path, home):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = {
        "d1": "Copperdeep Mining halted copper output after its Andes mine flooded in heavy rain.",
        "d2": "Brookward Financial raised its quarterly dividend to 42 cents per share.",
        "d3": "Voltrix Semiconductor shipped its new AI accelerator chip to cloud customers.",
        "d4": "Havenrock Realty Trust bought three office towers in Chicago for $410 million.",
    }
    queries = {
        "q1": "Which bank increased its dividend?",
        "q2": "mine flooding stopped copper production",
        "q3": "new AI chip shipments",
    }
    with (beir / "corpus.jsonl").open("w") as f:
        for i, (did, text) in enumerate(docs.items()):
            f.write(json.dumps({"_id": did, "title": "" if i % 2 else f"Doc {did}", "text": text}) + "\n")
    with (beir / "queries.jsonl").open("w") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td1\t1\nq3\td3\t1\n")

    out = finassist("eval", "retrieval", str(beir), "--json")

    assert (out["queries"], out["docs"]) == (3, 4)
    assert out["ndcg@10"] == pytest.approx(1.0) and out["recall@10"] == 1.0 and out["mrr@10"] == 1.0
    assert not (home / "store").exists()  # evaluation never touches the real store


def test_eval_retrieval_on_a_folder_that_is_not_beir_fails_clearly(tmp_path, home):
    proc = finassist("eval", "retrieval", str(tmp_path), check=False)
    assert proc.returncode == 2 and "not a BEIR directory" in proc.stderr


def test_eval_retrieval_scores_every_mode_in_one_run_and_per_answer_type(tmp_path, home):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = {
        "d1": "Copperdeep Mining halted copper output after its Andes mine flooded in heavy rain.",
        "d2": "Brookward Financial raised its quarterly dividend to 42 cents per share.",
        "d3": "Revenue | 2019 | 2018 ; Product sales | $1,496.5 | $1,402.1 ; Services | $310.2 | $288.0",
    }
    queries = [
        {"_id": "q1", "text": "mine flooding stopped copper production", "answer_from": "text"},
        {"_id": "q2", "text": "product sales 2019", "answer_from": "table"},
    ]
    with (beir / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items())
    with (beir / "queries.jsonl").open("w") as f:
        f.writelines(json.dumps(q) + "\n" for q in queries)
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")

    out = finassist("eval", "retrieval", str(beir), "--mode", "all", "--weights", "0.5", "--json")

    assert set(out["modes"]) == {"dense", "sparse", "hybrid-mix", "hybrid-rrf", "hybrid-dbsf", "hybrid-mix-w0.5"}
    assert out["docs"] == 3  # one ingest for all of them
    for name, m in out["modes"].items():
        assert m["ndcg@10"] == pytest.approx(1.0), name
        assert {t: v["queries"] for t, v in m["by_answer_type"].items()} == {"text": 1, "table": 1}
    assert out["modes"]["hybrid-mix-w0.5"]["dense_weight"] == 0.5
    assert out["ndcg@10"] == out["modes"]["dense"]["ndcg@10"]  # the top level is the first mode's

    proc = finassist("eval", "retrieval", str(beir), "--mode", "nonsense", check=False)
    assert proc.returncode == 2 and "unknown mode" in proc.stderr


def test_eval_retrieval_goes_through_the_serving_question_step(tmp_path, home):
    """The eval scores what serving retrieves: a question naming a filing's fiscal year and company finds that
    filing first, by the same filing preference `/v1/ask` applies, and loses it with the preference off."""
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    with (beir / "corpus.jsonl").open("w") as f:
        for company in FILING_REVENUE:
            for year in FILING_YEARS:
                title, text = filing_page(company, year)
                f.write(json.dumps({"_id": f"{company}-{year}", "title": title, "text": text}) + "\n")
    questions = {
        "q1": ("What was ACME's total revenue in fiscal 2020?", "ACME-2020"),
        "q2": ("How much revenue did BOLT report for FY2019?", "BOLT-2019"),
        "q3": ("CRUX total revenue 2021", "CRUX-2021"),
    }
    with (beir / "queries.jsonl").open("w") as f:
        f.writelines(json.dumps({"_id": q, "text": text}) + "\n" for q, (text, _) in questions.items())
    qrels = "".join(f"{q}\t{doc}\t1\n" for q, (_, doc) in questions.items())
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)

    served = finassist("eval", "retrieval", str(beir), "--json")
    unaware = finassist("eval", "retrieval", str(beir), "--json", env={"FINASSIST_FILING_BOOST": "0"})

    assert served["mrr@10"] == 1.0
    assert unaware["mrr@10"] < 1.0
