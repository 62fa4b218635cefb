"""Deterministic, citation-aware rewards."""

from __future__ import annotations

import pytest

from envs.search.rewards import RewardConfig, citation_score, score_answer, states_answer

TEXTS = {
    "milan": "Milan is a city in Italy and a hub of the European Union economy.",
    "eu": "The European Union is a political and economic union.",
    "rome": "Rome is the capital of Italy.",
}
HOPS = [{"evidence": ["milan"]}, {"evidence": ["eu"]}]
REF = {"answers": ["European Union"], "hops": HOPS}


def text_of(doc_id):
    return TEXTS.get(doc_id)


def test_states_answer_uses_squad_normalisation():
    assert states_answer("It is THE European-Union.", ["European Union"]) is False  # hyphen joins the words
    assert states_answer("in the European Union, today", ["the european union"])
    assert not states_answer("Europeans", ["Europe"])


def test_full_citations_full_reward():
    reward, m = score_answer("the European Union", ["milan", "eu"], REF, text_of)
    assert (
        reward == 1.0 and m["exact_match"] == 1.0 and m["hop_recall"] == 1.0 and m["citation_reward"] == 1.0
    )


def test_no_citations_no_citation_reward():
    reward, m = score_answer("European Union", [], REF, text_of)
    assert m["citation_reward"] == 0.0 and reward == 0.5


def test_partial_and_unsupported_citations():
    s = citation_score(["eu"], HOPS, ["European Union"], text_of)
    assert s.hop_recall == 0.5 and s.supported and s.carr == 0.5
    s = citation_score(["milan", "eu", "rome", "nonexistent"], HOPS, ["European Union"], text_of)
    assert s.unsupported == ("rome", "nonexistent") and s.carr == 0.5 and s.precision == 0.5
    s = citation_score(["rome"], HOPS, ["European Union"], text_of)
    assert s.carr == 0.0 and not s.supported


def test_citations_only_pay_with_a_correct_answer():
    reward, m = score_answer("Italy", ["milan", "eu"], REF, text_of)
    assert reward == 0.0 and m["citation_reward"] == 1.0
    reward, _ = score_answer(
        "Italy", ["milan", "eu"], REF, text_of, RewardConfig(gate_citations_on_answer=False)
    )
    assert reward == 0.5


def test_f1_metric_and_any_support_hops():
    ref = {"answers": ["Leonardo da Vinci"], "hops": [{"evidence": ["x"], "any_support": True}]}
    texts = {"y": "Leonardo da Vinci painted it."}
    reward, m = score_answer("da Vinci", ["y"], ref, texts.get, RewardConfig(answer_metric="f1"))
    assert m["hop_recall"] == 1.0 and m["f1"] == pytest.approx(0.8) and reward == pytest.approx(0.4)


def test_tasks_without_hops_reward_answer_stating_citations():
    ref = {"answers": ["Rome"]}
    assert score_answer("Rome", ["rome"], ref, text_of)[0] == 1.0
    assert score_answer("Rome", ["eu"], ref, text_of)[0] == 0.5
