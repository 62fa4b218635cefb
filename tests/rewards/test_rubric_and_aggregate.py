import json

import pytest

from agentgym.errors import UserError
from agentgym.rewards import Rubric, aggregate, load_rubric_table
from agentgym.rewards.criteria import CriterionScore

YAML = """
name: sky
criteria:
  - {id: scatter, kind: regex, pattern: scatter, hard: true, weight: 2}
  - {kind: contains, any_of: [Rayleigh]}
  - {kind: judged, text: "Explains wavelengths", scale: 3, weight: 2, judge: strict}
  - {kind: judged, text: "Claims the sky reflects the ocean", weight: -1}
  - {kind: numeric, target: 450, weight: 0}
  - {kind: json_field, path: a.b, equals: 3, weight: 0}
  - {kind: python, function: "tests.rewards.helpers:length_check", params: {min_words: 2}}
  - {kind: verifiable, check: exact_match, answers: [blue]}
"""


def test_yaml_and_json_round_trip(tmp_path):
    rubric = Rubric.coerce(YAML)
    assert [c.id for c in rubric.criteria][:3] == ["scatter", "c2", "c3"]
    assert {c.kind for c in rubric.criteria} == {"regex", "contains", "judged", "numeric", "json_field", "python",
                                                 "verifiable"}
    assert len(rubric.judged) == 2 and len(rubric.local) == 6
    for name in ("r.yaml", "r.json"):
        rubric.save(tmp_path / name)
        again = Rubric.load(tmp_path / name)
        assert again == rubric
    assert Rubric.coerce(rubric.to_json()) == rubric
    assert Rubric.coerce(json.loads(rubric.to_json())["criteria"]).criteria == rubric.criteria


@pytest.mark.parametrize("bad", [
    "criteria: []",
    "criteria: [{kind: nope}]",
    "criteria: [{kind: regex, pattern: '('}]",
    "criteria: [{id: a, kind: regex, pattern: x}, {id: a, kind: regex, pattern: y}]",
    "criteria: [{kind: judged, text: x, scale: 0}]",
    "criteria: [{kind: regex, pattern: x, weight: .nan}]",
    "{unclosed",
])
def test_invalid_rubrics_are_user_errors(bad):
    with pytest.raises(UserError):
        Rubric.coerce(bad)


def test_rubric_table(tmp_path):
    path = tmp_path / "rubrics.jsonl"
    path.write_text(json.dumps({"task_id": "t1", "rubric": [{"kind": "regex", "pattern": "x"}]}) + "\n\n")
    assert list(load_rubric_table(path)) == ["t1"]
    path.write_text("{not json}\n")
    with pytest.raises(UserError):
        load_rubric_table(path)
    with pytest.raises(UserError):
        load_rubric_table(tmp_path / "missing.jsonl")


def s(id, score, weight=1.0, hard=False, status="ok"):
    return CriterionScore(id, "regex", weight, hard, score, status if score is not None else "error")


def test_weighted_mean():
    assert aggregate([s("a", 1.0, 3), s("b", 0.0, 1)]).score == 0.75


def test_gate_zeroes_the_reward():
    result = aggregate([s("gate", 0.0, 1, hard=True), s("b", 1.0, 5)])
    assert result.score == 0.0 and result.gated and result.failed_gates == ["gate"]
    assert aggregate([s("gate", 0.6, 1, hard=True), s("b", 1.0, 1)]).score == 0.8
    assert aggregate([s("gate", 0.6, 1, hard=True)], pass_threshold=0.7).gated


def test_penalties_subtract_and_clip():
    assert aggregate([s("a", 1.0, 2), s("bad", 1.0, -1)]).score == 0.5
    assert aggregate([s("a", 1.0, 2), s("bad", 0.5, -1)]).score == 0.75
    assert aggregate([s("a", 0.0, 1), s("bad", 1.0, -1)]).score == 0.0
    assert aggregate([s("a", 0.0, 1), s("bad", 1.0, -1)], clip=None).score == -1.0
    assert aggregate([s("bad", 1.0, -0.25)]).score == 0.75  # penalties only: base 1


def test_zero_weight_is_a_metric_only():
    assert aggregate([s("a", 1.0, 1), s("metric", 0.0, 0)]).score == 1.0
    assert aggregate([s("metric", 1.0, 0)]).score is None


def test_missing_criteria_are_excluded_and_listed():
    result = aggregate([s("a", 1.0, 1), s("judged", None, 5), s("gate", None, 1, hard=True)])
    assert result.score == 1.0 and result.missing == ["judged", "gate"] and not result.gated
    assert result.failures == {"error": 2}
    assert aggregate([s("a", None, 1), s("bad", 1.0, -1)]).score is None
    assert aggregate([s("a", None, 1)]).score is None
    assert aggregate([s("a", None, 1)]).to_dict()["criteria"][0]["score"] is None
