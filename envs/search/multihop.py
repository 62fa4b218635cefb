"""Multi-hop questions generated from the corpus by random walks over the mention graph.

In the spirit of LongTraceRL's chains: a walk starts at an *anchor* document that a
unique clue identifies (its short description, which no other document shares) and
follows mentions for 1-3 more hops. Each later hop is identified only relative to the
previous one, by the vaguest clue that is unique among the documents the previous one
mentions: its topic when possible, else its description. So the final answer cannot
be looked up directly; the chain has to be followed, and every hop's evidence
document is recorded for citation rewards, hints and progress. Each hop also records
tiered distractors: (1) the other documents the previous hop mentions (what the
agent must rule out), (2) BM25 neighbours of the evidence, (3) same-topic documents.
Everything is deterministic in the seed.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence

from agentgym.core import Task
from agentgym.rewards.verifiable import normalize_answer
from envs.search.corpus import Document
from envs.search.graph import base_title, mention_graph

GENERATOR_VERSION = 2
VAGUE_TOPICS = frozenset({"", "Uncategorized"})


def _hop_clue(
    parent: str, target: Document, graph: dict[str, list[str]], by_id: dict[str, Document]
) -> dict | None:
    """The vaguest clue that singles out ``target`` among ``parent``'s mentions, if any."""
    siblings = [by_id[t] for t in graph[parent]]
    if target.topic not in VAGUE_TOPICS and sum(s.topic == target.topic for s in siblings) == 1:
        return {"kind": "topic", "value": target.topic, "text": f'has the topic "{target.topic}"'}
    if target.description and sum(s.description == target.description for s in siblings) == 1:
        return {
            "kind": "description",
            "value": target.description,
            "text": f'is described as "{target.description}"',
        }
    return None


def compose_question(anchor: Document, clues: Sequence[dict]) -> str:
    """The question text for a chain: the anchor's clue, then one sentence per hop."""
    parts = [f'Start from the article described as "{anchor.description}".']
    for i, clue in enumerate(clues):
        whose = "its summary" if i == 0 else "that article's summary"
        last = i == len(clues) - 1
        sentence = f"Among the articles {whose} mentions by title, exactly one {clue['text']}"
        parts.append(
            sentence + (". Which article is that? Answer with its title." if last else "; go to it.")
        )
    return " ".join(parts)


def accepted_answers(doc: Document) -> list[str]:
    answers = [doc.title]
    if base_title(doc.title) != doc.title:
        answers.append(base_title(doc.title))
    return answers


class MultiHopGenerator:
    """Builds multi-hop tasks over one corpus (the graph and BM25 neighbours are computed once)."""

    def __init__(self, docs: Sequence[Document], index=None, corpus_name: str = "corpus"):
        self.docs = list(docs)
        self.by_id = {d.id: d for d in self.docs}
        self.graph = mention_graph(self.docs)
        self.corpus_name = corpus_name
        desc_count = Counter(d.description for d in self.docs if d.description)
        self.anchors = [
            d.id for d in self.docs if d.description and desc_count[d.description] == 1 and self.graph[d.id]
        ]
        self._index = index
        self._by_topic: dict[str, list[str]] = {}
        for d in sorted(self.docs, key=lambda d: d.id):
            self._by_topic.setdefault(d.topic, []).append(d.id)

    @property
    def index(self):
        if self._index is None:
            from envs.search.backends.bm25s_backend import Bm25sIndex

            self._index = Bm25sIndex.from_documents(self.docs)
        return self._index

    def walk(self, rng: random.Random, hops: int) -> tuple[list[str], list[dict]] | None:
        """A chain of ``hops`` documents and the clues of hops 2..n, or None if it dead-ends."""
        chain = [rng.choice(self.anchors)]
        clues: list[dict] = []
        while len(chain) < hops:
            parent = chain[-1]
            options = []
            for t in self.graph[parent]:
                if t in chain:
                    continue
                clue = _hop_clue(parent, self.by_id[t], self.graph, self.by_id)
                if clue is not None:
                    options.append((t, clue))
            if not options:
                return None
            t, clue = options[rng.randrange(len(options))]
            chain.append(t)
            clues.append(clue)
        return chain, clues

    def _leaks(self, chain: list[str], clues: list[dict]) -> bool:
        """Whether the question names a document after the anchor (it would give a hop away)."""
        question = f" {normalize_answer(compose_question(self.by_id[chain[0]], clues))} "
        for doc_id in chain[1:]:
            name = normalize_answer(base_title(self.by_id[doc_id].title))
            if name and f" {name} " in question:
                return True
        return False

    def make_task(self, chain: list[str], clues: list[dict], seed: int) -> Task:
        docs = [self.by_id[c] for c in chain]
        question = compose_question(docs[0], clues)
        hops = [
            {
                "evidence": [docs[0].id],
                "title": docs[0].title,
                "clue": f'described as "{docs[0].description}"',
            }
        ]
        for parent, doc, clue in zip(docs, docs[1:], clues):
            hops.append({"evidence": [doc.id], "title": doc.title, "clue": clue["text"], "via": parent.id})
        digest = hashlib.sha256("|".join(chain).encode()).hexdigest()[:12]
        return Task(
            id=f"search-mh{len(chain)}-{digest}",
            inputs={"question": question},
            reference={
                "answers": accepted_answers(docs[-1]),
                "answer_doc": docs[-1].id,
                "hops": hops,
                "distractors": self.distractors(chain),
            },
            metadata={
                "kind": "multihop",
                "num_hops": len(chain),
                "corpus": self.corpus_name,
                "seed": seed,
                "generator_version": GENERATOR_VERSION,
            },
        )

    def distractors(self, chain: list[str], per_tier: int = 3) -> list[dict]:
        """Documents close to each hop's evidence, in three tiers (1 = closest)."""
        out: list[dict] = []
        used = set(chain)
        for hop, doc_id in enumerate(chain):
            doc = self.by_id[doc_id]
            tiers: list[list[str]] = [[], [], []]
            if hop > 0:
                tiers[0] = [t for t in self.graph[chain[hop - 1]] if t not in used][:per_tier]
            query = f"{doc.title} {doc.description}"
            tiers[1] = [
                i for i, _ in self.index.search_ids(query, per_tier + len(chain) + 3) if i not in used
            ]
            same_topic = self._by_topic.get(doc.topic, [])
            rng = random.Random(f"{doc_id}-distractors")
            picks = rng.sample(same_topic, min(per_tier + len(chain), len(same_topic)))
            tiers[2] = [t for t in picks if t not in used]
            for tier, ids in enumerate(tiers, 1):
                for i in ids[:per_tier]:
                    if i not in used:
                        used.add(i)
                        out.append({"doc_id": i, "tier": tier, "hop": hop + 1})
        return out

    def generate(
        self, count: int, seed: int = 0, hops: Sequence[int] = (2, 3, 4), max_tries: int = 50
    ) -> list[Task]:
        """``count`` distinct tasks (fewer if the graph runs out), deterministic in ``seed``."""
        rng = random.Random(seed)
        tasks: list[Task] = []
        seen: set[tuple[str, ...]] = set()
        tries = 0
        while len(tasks) < count and tries < count * max_tries and self.anchors:
            tries += 1
            n = hops[len(tasks) % len(hops)]
            walked = self.walk(rng, n)
            if walked is None:
                continue
            chain, clues = walked
            if tuple(chain) in seen or self._leaks(chain, clues):
                continue
            seen.add(tuple(chain))
            tasks.append(self.make_task(chain, clues, seed))
        return tasks
