"""Deterministic rewards for answers with citations: answer correctness and CaRR.

Answer correctness is SQuAD exact match or token F1 against the accepted answers
(:mod:`agentgym.rewards.verifiable`). The citation-aware reward (CaRR) scores the
cited document ids against the task's recorded evidence:

* hop recall: the fraction of hops whose evidence document is cited (for a hop
  marked ``any_support``, any cited document that states the answer also counts);
* support: at least one cited document states an accepted answer; without it the
  hop recall counts half;
* unsupported citations (ids that are no hop's evidence and do not state the answer,
  including ids that do not exist) cost ``unsupported_penalty`` each.

A task that records no hops counts as one hop that any answer-stating citation resolves.

``carr = clip(hop_recall * (0.5 + 0.5 * supported) - penalty * unsupported, 0, 1)``,
and 0 with no citations. The episode reward is
``answer_weight * answer + citation_weight * carr`` where the citation part is, by
default, paid only for a correct answer (so citing everything earns nothing). Every
part is a pure function of the reply and the task: verifiable and reproducible.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from agentgym.rewards.verifiable import exact_match, normalize_answer, token_f1


@dataclass(frozen=True)
class CitationScore:
    num_hops: int
    hops_cited: int
    hop_recall: float
    supported: bool
    unsupported: tuple[str, ...]
    precision: float
    carr: float


def states_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether a normalised accepted answer occurs as whole words in the normalised text."""
    norm = f" {normalize_answer(text)} "
    for a in answers:
        a_norm = normalize_answer(a)
        if a_norm and re.search(rf"(?<!\w){re.escape(a_norm)}(?!\w)", norm):
            return True
    return False


def citation_score(
    citations: Sequence[str],
    hops: Sequence[dict],
    answers: Sequence[str],
    doc_text: Callable[[str], str | None],
    unsupported_penalty: float = 0.25,
) -> CitationScore:
    """Score cited ids against each hop's evidence (``doc_text(id)`` is None for unknown ids)."""
    cited = list(dict.fromkeys(str(c) for c in citations))  # de-duplicated, order kept
    stating = {c for c in cited if (t := doc_text(c)) is not None and states_answer(t, answers)}
    hops_cited = 0
    evidence: set[str] = set()
    for hop in hops:
        ev = set(hop.get("evidence", []))
        evidence |= ev
        if ev.intersection(cited) or (hop.get("any_support") and stating):
            hops_cited += 1
    unsupported = tuple(c for c in cited if c not in evidence and c not in stating)
    supported = bool(stating)
    # Without recorded hops (a user's own tasks), a citation that states the answer is the evidence.
    recall = hops_cited / len(hops) if hops else float(supported)
    if not cited:
        carr = 0.0
    else:
        carr = recall * (0.5 + 0.5 * supported) - unsupported_penalty * len(unsupported)
        carr = min(1.0, max(0.0, carr))
    precision = (len(cited) - len(unsupported)) / len(cited) if cited else 0.0
    return CitationScore(len(hops), hops_cited, recall, supported, unsupported, precision, carr)


@dataclass(frozen=True)
class RewardConfig:
    answer_metric: str = "em"  # "em" or "f1"
    answer_weight: float = 0.5
    citation_weight: float = 0.5
    unsupported_penalty: float = 0.25
    gate_citations_on_answer: bool = True


def score_answer(
    text: str,
    citations: Sequence[str],
    reference: dict,
    doc_text: Callable[[str], str | None],
    config: RewardConfig | None = None,
) -> tuple[float, dict]:
    """The episode reward for a final answer, and every component as a metric."""
    config = config or RewardConfig()
    answers = list(reference["answers"])
    em = exact_match(text, answers)
    f1 = token_f1(text, answers)
    answer = em if config.answer_metric == "em" else f1
    cite = citation_score(citations, reference.get("hops", []), answers, doc_text, config.unsupported_penalty)
    cite_part = cite.carr * (em if config.gate_citations_on_answer else 1.0)
    reward = config.answer_weight * answer + config.citation_weight * cite_part
    metrics = {"exact_match": em, "f1": f1, "citation_reward": cite.carr, **asdict(cite)}
    metrics["unsupported"] = list(cite.unsupported)
    metrics.pop("carr")
    return float(reward), metrics
