import pytest
from pydantic import ValidationError

from agentgym.rewards import Rubric, ScoringContext, score_response
from agentgym.rewards.criteria import (
    ContainsCriterion,
    JsonFieldCriterion,
    NumericCriterion,
    PythonCriterion,
    RegexCriterion,
    VerifiableCriterion,
    evaluate_local,
)


def ctx(text, **reference):
    return ScoringContext(response=text, question="q?", reference=reference)


async def score(criterion, text, **reference):
    return await evaluate_local(criterion, ctx(text, **reference))


async def test_regex():
    assert (await score(RegexCriterion(pattern=r"\bAu\b"), "It is au.")).score == 1.0
    assert (await score(RegexCriterion(pattern=r"\bAu\b", ignore_case=False), "It is au.")).score == 0.0
    assert (await score(RegexCriterion(pattern="sydney", negate=True), "Sydney")).score == 0.0
    with pytest.raises(ValidationError):
        RegexCriterion(pattern="(unclosed")


async def test_contains():
    c = ContainsCriterion(any_of=["Jane Austen", "Austen"])
    assert (await score(c, "It was Austen.")).score == 1.0
    assert (await score(ContainsCriterion(all_of=["blue", "whale"]), "a blue shark")).score == 0.0
    assert (await score(ContainsCriterion(any_of=["pacific"]), "Pacifically")).score == 0.0
    assert (await score(ContainsCriterion(any_of=["pacific"], normalize=False), "Pacifically")).score == 1.0
    with pytest.raises(ValidationError):
        ContainsCriterion()


async def test_numeric():
    assert (await score(NumericCriterion(target=299792, rel_tol=0.01), "about 300,000 km/s")).score == 1.0
    assert (await score(NumericCriterion(target=5), "5 then 7")).score == 0.0  # last number
    assert (await score(NumericCriterion(target=5, which="any"), "5 then 7")).score == 1.0
    assert (await score(NumericCriterion(), "it is 1,440", answer="1440")).score == 1.0
    assert (await score(NumericCriterion(target=3), "no digits")).score == 0.0
    missing = await score(NumericCriterion(), "42")
    assert missing.score is None and missing.status == "error"


async def test_json_field():
    text = 'Here: ```json\n{"answer": {"value": 42, "unit": "m"}, "items": [{"n": "a"}]}\n```'
    assert (await score(JsonFieldCriterion(path="answer.value", equals=42), text)).score == 1.0
    assert (await score(JsonFieldCriterion(path="answer.value", equals=41), text)).score == 0.0
    assert (await score(JsonFieldCriterion(path="items.0.n", pattern="^a$"), text)).score == 1.0
    assert (await score(JsonFieldCriterion(path="answer.unit"), text)).score == 1.0
    assert (await score(JsonFieldCriterion(path="answer.missing"), text)).score == 0.0
    assert (await score(JsonFieldCriterion(path="x", equals=None), '{"x": null}')).score == 1.0
    assert (await score(JsonFieldCriterion(path="x"), "no json here")).score == 0.0


async def test_python_callable_by_import_path():
    ok = await score(PythonCriterion(function="tests.rewards.helpers:length_check", params={"min_words": 2}), "a b")
    assert ok.score == 1.0
    result = await score(PythonCriterion(function="tests.rewards.helpers.async_check"), "it is 42", answer="42")
    assert (result.score, result.rationale) == (1.0, "checked asynchronously")
    d = await score(PythonCriterion(function="tests.rewards.helpers:dict_check"), "x")
    assert d.score == 0.25 and "messages" in d.rationale and "reference" in d.rationale
    for path in ("tests.rewards.helpers:broken_check", "tests.rewards.helpers:nope", "nodots"):
        failed = await score(PythonCriterion(function=path), "x")
        assert failed.score is None and failed.status == "error", path


async def test_verifiable_checks_use_the_hidden_reference():
    assert (await score(VerifiableCriterion(check="exact_match"), "The Nile", answer="Nile")).score == 1.0
    assert (await score(VerifiableCriterion(check="exact_match"), "x", answer="Nile", aliases=["x"])).score == 1.0
    f1 = await score(VerifiableCriterion(check="token_f1"), "Jane", answer="Jane Austen")
    assert abs(f1.score - 2 / 3) < 1e-9
    assert (await score(VerifiableCriterion(check="token_f1", threshold=0.7), "Jane", answer="Jane Austen")).score == 0
    custom = VerifiableCriterion(check="tests.rewards.helpers:reversed_match", answers=["abc"])
    assert (await score(custom, "cba")).score == 1.0
    none = await score(VerifiableCriterion(), "anything")
    assert none.score is None and none.status == "error"


async def test_judged_criteria_without_a_judge_are_skipped_not_zero():
    rubric = Rubric.coerce([{"kind": "judged", "text": "Is polite"}, {"kind": "regex", "pattern": "x"}])
    result = await score_response(rubric, ctx("x"))
    judged = result.scores[0]
    assert judged.score is None and judged.status == "skipped"
    assert result.score == 1.0 and result.missing == ["c1"]
