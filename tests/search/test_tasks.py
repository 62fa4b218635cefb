"""Task generation: multi-hop walks, single-hop questions, determinism and disjoint splits."""

from __future__ import annotations

import re

import pytest

from agentgym.core import split_of
from agentgym.rewards.verifiable import normalize_answer
from envs.search.graph import base_title, mention_graph
from envs.search.multihop import MultiHopGenerator
from envs.search.tasks import split_tasks, task_split, wiki_task_set


@pytest.fixture(scope="module")
def generator(wiki_docs, wiki_bm25s):
    return MultiHopGenerator(wiki_docs, wiki_bm25s, "wiki")


def test_mention_graph_on_small_corpus(small_docs):
    graph = mention_graph(small_docs)
    assert graph["mona"] == ["leo", "louvre"]
    assert "paris" in graph["france"] and "france" not in graph["france"]
    assert base_title("Mercury (planet)") == "Mercury"


def test_multihop_is_deterministic_in_the_seed(generator):
    a = generator.generate(40, seed=7)
    b = generator.generate(40, seed=7)
    c = generator.generate(40, seed=8)
    assert [t.model_dump() for t in a] == [t.model_dump() for t in b]
    assert [t.id for t in a] != [t.id for t in c]


def test_multihop_chains_are_valid(generator):
    tasks = generator.generate(150, seed=1)
    assert {t.metadata["num_hops"] for t in tasks} == {2, 3, 4}
    by_id = generator.by_id
    for task in tasks:
        hops = task.reference["hops"]
        chain = [h["evidence"][0] for h in hops]
        assert len(hops) == task.metadata["num_hops"] == len(set(chain))
        # every hop's document is mentioned by the previous one, and singled out by its clue
        for prev, hop in zip(chain, hops[1:]):
            assert hop["evidence"][0] in generator.graph[prev]
            assert hop["via"] == prev
            assert hop["clue"] in task.inputs["question"]
        answer_doc = by_id[chain[-1]]
        assert task.reference["answers"][0] == answer_doc.title
        # the answer is supported: the previous hop's text names it
        words = lambda text: " " + " ".join(re.findall(r"\w+", text)) + " "
        assert words(base_title(answer_doc.title)) in words(by_id[chain[-2]].contents)
        # distractors are never evidence, and come in tiers
        ids = {d["doc_id"] for d in task.reference["distractors"]}
        assert not ids & set(chain)
        assert {d["tier"] for d in task.reference["distractors"]} <= {1, 2, 3}
        for d in task.reference["distractors"]:
            if d["tier"] == 1:  # tier 1: the other documents the previous hop mentions
                assert d["hop"] >= 2 and d["doc_id"] in generator.graph[chain[d["hop"] - 2]]
        # the question names no document after the anchor: no hop is given away
        question = f" {normalize_answer(task.inputs['question'])} "
        for doc_id in chain[1:]:
            assert f" {normalize_answer(base_title(by_id[doc_id].title))} " not in question


@pytest.mark.parametrize("name", ["multihop", "singlehop"])
def test_splits_never_overlap(name):
    train, test = wiki_task_set(name, "train"), wiki_task_set(name, "test")
    assert len(train) > 500 and len(test) > 50
    assert not {t.id for t in train} & {t.id for t in test}
    assert not {t.inputs["question"] for t in train} & {t.inputs["question"] for t in test}
    answers = lambda ts: {normalize_answer(a) for t in ts for a in t.reference["answers"][:1]}
    assert not answers(train) & answers(test)
    assert all(task_split(t) == "test" for t in test)
    # the core's content-hash split agrees, so generate_split and eval suites see the same sets
    assert all(split_of(t.fingerprint()) == "test" for t in test)
    assert all(split_of(t.fingerprint()) == "train" for t in train)
    assert split_tasks(train + test, "test") == [t for t in train + test if t in test]


def test_trivia_answers_are_stated_by_their_evidence(wiki_bm25s):
    tasks = wiki_task_set("trivia")
    assert len(tasks) > 300
    for task in tasks[:200]:
        evidence = task.reference["hops"][0]["evidence"]
        golds = [normalize_answer(a) for a in task.reference["answers"]]
        text = normalize_answer(wiki_bm25s.get(evidence[0]).text)
        assert any(re.search(rf"(?<!\w){re.escape(g)}(?!\w)", text) for g in golds if g), task.id
