"""Single-hop questions with accepted answers that the corpus supports.

Two sources, both built at run time and never committed:

* ``trivia``: general-knowledge lists of the Red-Trivia sdist on PyPI (GPLv3), kept
  only when an accepted answer occurs in a document among the question's BM25 top
  results; those documents are the hop's evidence (citing any one of them counts).
* ``descriptions``: "which article is described as ...?" from the corpus's short
  descriptions that no two documents share; the evidence is that one document.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections import Counter
from collections.abc import Sequence

from agentgym.core import Task
from agentgym.rewards.verifiable import normalize_answer
from envs.search.corpus import Document, download_sdist
from envs.search.multihop import accepted_answers

TRIVIA_PACKAGE = "Red-Trivia"
TRIVIA_VERSION = "1.1.1"
TRIVIA_LISTS = (
    "general",
    "artandliterature",
    "sports",
    "worldcapitals",
    "uscapitals",
    "elements",
    "greekmyth",
    "computers",
    "entertainment",
)
GENERATOR_VERSION = 1


def load_trivia(lists: Sequence[str] = TRIVIA_LISTS) -> list[tuple[str, str, list[str]]]:
    """(list name, question, answers) from the Red-Trivia sdist, fetched into the cache on first use."""
    import yaml

    sdist = download_sdist(TRIVIA_PACKAGE, TRIVIA_VERSION)
    out: list[tuple[str, str, list[str]]] = []
    with tarfile.open(sdist) as tf:
        members = {
            m.name.rsplit("/", 1)[-1][: -len(".yaml")]: m for m in tf.getmembers() if m.name.endswith(".yaml")
        }
        for name in lists:
            member = members.get(name)
            if member is None:
                continue
            fh = tf.extractfile(member)
            assert fh is not None
            data = yaml.safe_load(fh.read().decode("utf-8"))
            for question, answers in (data or {}).items():
                if question == "AUTHOR" or not isinstance(answers, list):
                    continue
                answers = [str(a).strip() for a in answers if str(a).strip()]
                if answers:
                    out.append((name, str(question).strip(), answers))
    return out


def _contains(text_norm: str, answer_norm: str) -> bool:
    return bool(answer_norm) and re.search(rf"(?<!\w){re.escape(answer_norm)}(?!\w)", text_norm) is not None


def trivia_tasks(index, corpus_name: str = "corpus", depth: int = 30, max_evidence: int = 10) -> list[Task]:
    """Trivia questions whose answer is in a document among the question's top ``depth`` hits."""
    items = load_trivia()
    ranked = index.batch_search_ids([q for _, q, _ in items], depth)
    norm_cache: dict[str, str] = {}
    tasks: list[Task] = []
    for (list_name, question, answers), hits in zip(items, ranked):
        golds = [a for a in answers if len(normalize_answer(a)) >= 3 and not normalize_answer(a).isdigit()]
        if not golds:
            continue
        gold_norm = [normalize_answer(a) for a in golds]
        evidence = []
        for doc_id, _ in hits:
            text = norm_cache.get(doc_id)
            if text is None:
                text = norm_cache[doc_id] = normalize_answer(index.get(doc_id).text)
            if any(_contains(text, g) for g in gold_norm):
                evidence.append(doc_id)
        if not evidence:
            continue
        digest = hashlib.sha256(question.encode()).hexdigest()[:12]
        tasks.append(
            Task(
                id=f"search-trivia-{digest}",
                inputs={"question": question},
                reference={
                    "answers": answers,
                    "answer_key": gold_norm[0],
                    "hops": [
                        {
                            "evidence": evidence[:max_evidence],
                            "clue": "a document that states the answer",
                            "any_support": True,
                        }
                    ],
                    "distractors": [],
                },
                metadata={
                    "kind": "trivia",
                    "num_hops": 1,
                    "list": list_name,
                    "corpus": corpus_name,
                    "source": f"{TRIVIA_PACKAGE} {TRIVIA_VERSION} (GPLv3)",
                    "generator_version": GENERATOR_VERSION,
                },
            )
        )
    return tasks


def description_tasks(docs: Sequence[Document], corpus_name: str = "corpus") -> list[Task]:
    """'Which article is described as ...?' for every description no two documents share."""
    counts = Counter(d.description for d in docs if d.description)
    tasks = []
    for doc in docs:
        if not doc.description or counts[doc.description] != 1:
            continue
        question = f'Which article is described as "{doc.description}"? Answer with its title.'
        tasks.append(
            Task(
                id=f"search-desc-{hashlib.sha256(doc.id.encode()).hexdigest()[:12]}",
                inputs={"question": question},
                reference={
                    "answers": accepted_answers(doc),
                    "answer_doc": doc.id,
                    "hops": [
                        {
                            "evidence": [doc.id],
                            "title": doc.title,
                            "clue": f'described as "{doc.description}"',
                        }
                    ],
                    "distractors": [],
                },
                metadata={
                    "kind": "description",
                    "num_hops": 1,
                    "corpus": corpus_name,
                    "generator_version": GENERATOR_VERSION,
                },
            )
        )
    return tasks
