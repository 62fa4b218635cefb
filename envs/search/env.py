"""The search environment: answer a question by searching a corpus, reading, and citing.

Tools: ``search(query, k)`` (a compact ranked list: id, title when the id is not just
the title, a query-biased snippet), ``open(doc_id, page)`` (a document, paged when
long) and ``answer(text, citations)`` (ends the episode). The reward is paid on the
answer (see :mod:`envs.search.rewards`). Budgets: the turn limit of every text env
and a limit on search/open calls, after which only ``answer`` is accepted.

The hidden reference of each task records the evidence document of every hop; it
drives the deterministic citation reward, :meth:`hint` (which hop is unresolved),
:meth:`progress` (the share of hops whose evidence has been seen) and
:meth:`oracle_action` (search for each hop's document, open it, answer with citations).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentgym.core import Task, TextEnv, ToolError, tool
from agentgym.errors import UserError
from envs.search.backends import SearchIndex
from envs.search.rewards import RewardConfig, score_answer

SYSTEM_PROMPT = (
    "You answer questions by searching a collection of documents. Use the tools: search(query, k) "
    "lists matching documents with their ids, open(doc_id, page) shows a document, and "
    "answer(text, citations) submits a short final answer with the ids of the documents that "
    "support it, one for each step of your reasoning. Cite only documents you relied on."
)


class SearchEnv(TextEnv):
    """BM25 search over a corpus; single- and multi-hop questions; answers with citations."""

    system_prompt = SYSTEM_PROMPT

    def __init__(
        self,
        *,
        task_set: str = "multihop",
        seed: int = 0,
        num_tasks: int | None = None,
        index: str | SearchIndex | None = None,
        backend: str = "bm25s",
        search_k: int = 5,
        max_k: int = 20,
        snippet_words: int = 30,
        page_chars: int = 2000,
        max_tool_calls: int = 24,
        max_turns: int = 16,
        answer_metric: str = "em",
        answer_weight: float = 0.5,
        citation_weight: float = 0.5,
        unsupported_penalty: float = 0.25,
        gate_citations_on_answer: bool = True,
        **kwargs: Any,
    ):
        if answer_metric not in ("em", "f1"):
            raise UserError(f"answer_metric must be 'em' or 'f1', not {answer_metric!r}.")
        if not 1 <= search_k <= max_k:
            raise UserError(f"search_k must be between 1 and max_k ({max_k}), not {search_k}.")
        self.task_set = task_set
        self.seed = int(seed)
        self.search_k = int(search_k)
        self.max_k = int(max_k)
        self.snippet_words = int(snippet_words)
        self.page_chars = max(200, int(page_chars))
        self.max_tool_calls = int(max_tool_calls)
        self.reward_config = RewardConfig(
            answer_metric,
            float(answer_weight),
            float(citation_weight),
            float(unsupported_penalty),
            bool(gate_citations_on_answer),
        )
        split = kwargs.get("split", "train")
        given = kwargs.get("task") is not None or kwargs.get("tasks") is not None
        if given:
            if isinstance(kwargs.get("tasks"), (str, Path)):
                from agentgym.core import load_tasks

                kwargs["tasks"] = load_tasks(kwargs["tasks"])
        else:
            if index is not None:
                raise UserError(
                    "a custom index needs its own tasks: pass tasks= (a JSONL file or a list of Task)."
                )
            from envs.search.tasks import wiki_task_set

            tasks = wiki_task_set(task_set, split, self.seed)
            kwargs["tasks"] = tasks[: int(num_tasks)] if num_tasks else tasks
        self.index = self._resolve_index(index, backend)
        super().__init__(max_turns=int(max_turns), **kwargs)

    @staticmethod
    def _resolve_index(index: str | SearchIndex | None, backend: str) -> SearchIndex:
        if isinstance(index, SearchIndex):
            return index
        from envs.search import tasks

        if index is None:
            return tasks.wiki_index(backend)
        return tasks.open_index(index)

    # ----------------------------------------------------------------- episode
    def generate_task(self, index: int) -> Task:
        """The task at ``index`` (modulo its length) of this environment's split of its task set."""
        if not self._task_list:
            raise NotImplementedError("this environment was given a fixed task")
        return self._task_list[index % len(self._task_list)]

    def setup(self, task: Task) -> str:
        question = task.inputs.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"task {task.id}: inputs.question must be a non-empty string")
        if not task.reference.get("answers"):
            raise ValueError(f"task {task.id}: reference.answers must list the accepted answers")
        self._hops: list[dict] = list(task.reference.get("hops", []))
        self._seen: set[str] = set()  # ids shown in result lists or opened
        self._opened: list[str] = []
        self._searched: list[str] = []
        self.tool_calls = 0
        self._answered = False
        return (
            f"Question: {question.strip()}\n\n"
            f"Search the collection ({len(self.index):,} documents), read what you need, then call answer "
            f"with a short answer and the ids of the documents that support it. "
            f"You have {self.max_tool_calls} search/open calls and {self.max_turns} turns."
        )

    def _spend(self) -> None:
        if self.tool_calls >= self.max_tool_calls:
            raise ToolError(
                f"the budget of {self.max_tool_calls} search/open calls is used up; call answer now."
            )
        self.tool_calls += 1

    def _budget_note(self) -> str:
        left = self.max_tool_calls - self.tool_calls
        return "\n(No search/open calls left: call answer now.)" if left <= 0 else ""

    # ----------------------------------------------------------------- tools
    @tool
    def search(self, query: str, k: int | None = None) -> str:
        """Search the collection with BM25 and list the best matching documents.

        Args:
            query: words to look for.
            k: how many results to show (default 5, at most 20).
        """
        k = self.search_k if k is None else k
        query = " ".join(query.split())[:500]
        if not query:
            raise ToolError("the query is empty; give some words to search for.")
        if not 1 <= k <= self.max_k:
            raise ToolError(f"k must be between 1 and {self.max_k}.")
        self._spend()
        self._searched.append(query)
        hits = self.index.search(query, k, snippet_words=self.snippet_words)
        if not hits:
            return f'No results for "{query}". Try other words.' + self._budget_note()
        lines = [f'Results for "{query}":']
        for rank, hit in enumerate(hits, 1):
            self._seen.add(hit.doc_id)
            title = "" if hit.doc_id == hit.title.replace(" ", "_") else f" {hit.title}:"
            lines.append(f"{rank}. [{hit.doc_id}]{title} {hit.snippet}")
        return "\n".join(lines) + self._budget_note()

    @tool
    def open(self, doc_id: str, page: int = 1) -> str:
        """Show a document (long documents are shown a page at a time).

        Args:
            doc_id: the id of a document, as shown in square brackets in search results.
            page: which page to show, from 1.
        """
        doc = self._lookup(doc_id)
        pages = _paginate(doc.contents, self.page_chars)
        if not 1 <= page <= len(pages):
            raise ToolError(f"page must be between 1 and {len(pages)} for {doc.id}.")
        self._spend()
        self._seen.add(doc.id)
        if doc.id not in self._opened:
            self._opened.append(doc.id)
        head = [f"[{doc.id}] {doc.title}"]
        meta = " | ".join(x for x in (doc.description, f"Topic: {doc.topic}" if doc.topic else "") if x)
        if meta:
            head.append(meta)
        if len(pages) > 1:
            head.append(f"(page {page} of {len(pages)})")
        return "\n".join(head) + "\n\n" + pages[page - 1] + self._budget_note()

    @tool
    def answer(self, text: str, citations: list[str] | str | None = None) -> str:
        """Submit the final answer; this ends the episode.

        Args:
            text: the answer, as short as possible (a name, a title, a number).
            citations: ids of the documents that support the answer, one per step of reasoning.
        """
        text = " ".join(str(text).split())
        if not text:
            raise ToolError("the answer is empty.")
        if isinstance(citations, str):  # small models often send "A, B" instead of ["A", "B"]
            citations = citations.split(",")
        citations = [str(c).strip().strip("[]") for c in (citations or []) if str(c).strip()][:50]
        assert self.task is not None
        reward, metrics = score_answer(
            text, citations, self.task.reference, self._doc_text, self.reward_config
        )
        metrics.update(
            answer=text,
            citations=citations,
            tool_calls=self.tool_calls,
            searches=len(self._searched),
            opened=len(self._opened),
            progress=self.progress(),
        )
        self._answered = True
        self.finish(reward, bool(metrics["exact_match"] >= 1.0), **metrics)
        return f"Answer submitted: {text}" + (f" (citing {', '.join(citations)})" if citations else "")

    def _lookup(self, doc_id: str):
        key = str(doc_id).strip().strip("[]")
        doc = self.index.resolve(key)
        if doc is None:
            raise ToolError(f"no document has the id {key[:80]!r}; use an id from the search results.")
        return doc

    def _doc_text(self, doc_id: str) -> str | None:
        doc = self.index.get(doc_id)
        return None if doc is None else doc.text

    # ----------------------------------------------------------------- guidance and oracle
    def _hop_found(self, hop: dict) -> bool:
        return bool(self._seen.intersection(hop.get("evidence", [])))

    def progress(self) -> float | None:
        """The share of hops whose evidence document has been shown or opened."""
        if self.task is None or not self._hops:
            return None
        return sum(self._hop_found(h) for h in self._hops) / len(self._hops)

    def hint(self) -> str | None:
        """Which hop is still unresolved, and what identifies its document."""
        if self.task is None or self._answered or not self._hops:
            return None
        n = len(self._hops)
        for i, hop in enumerate(self._hops):
            if self._hop_found(hop):
                continue
            if hop.get("any_support"):
                return "Search for the key words of the question and open results that state the answer."
            if i == 0:
                return f"Hop 1 of {n} is unresolved: find the article {hop['clue']} (search for words of that description)."
            prev = self._hops[i - 1]
            return (
                f"Hop {i + 1} of {n} is unresolved: among the articles that {prev.get('title', 'the previous article')!r} "
                f"mentions by title, find the one that {hop['clue']}; open the candidates to check."
            )
        return f"All {n} hop(s) are resolved: answer, citing the document you used for each hop."

    def oracle_action(self) -> str:
        """Follow the recorded evidence: search for each hop's document, open it, then answer."""
        assert self.task is not None
        for hop in self._hops:
            target = hop["evidence"][0]
            if target in self._opened:
                continue
            query = hop.get("title") or self.task.inputs["question"]
            if (
                query not in self._searched
                and target not in self._seen
                and self.tool_calls + 2 <= self.max_tool_calls
            ):
                return _call("search", {"query": query, "k": self.search_k})
            if self.tool_calls < self.max_tool_calls:
                return _call("open", {"doc_id": target})
            break
        citations = [h["evidence"][0] for h in self._hops]
        return _call("answer", {"text": self.task.reference["answers"][0], "citations": citations})

    def render_text(self) -> str:
        return self._last_obs["content"] if self._last_obs else ""


def _call(name: str, arguments: dict) -> str:
    return (
        "<tool_call>"
        + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
        + "</tool_call>"
    )


def _paginate(text: str, size: int) -> list[str]:
    """Split text into pages of at most ~``size`` characters, at whitespace when possible."""
    pages: list[str] = []
    rest = text.strip()
    while len(rest) > size:
        cut = rest.rfind(" ", 0, size)
        cut = cut if cut > size // 2 else size
        pages.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    pages.append(rest)
    return pages
