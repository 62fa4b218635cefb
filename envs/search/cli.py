"""``agentgym search``: build and query BM25 indexes; export the corpus and task sets.

agentgym search index CORPUS.jsonl --backend bm25s --out DIR
agentgym search query DIR "who discovered penicillin" -k 5
agentgym search corpus --out wiki.jsonl          # the offline Wikipedia corpus
agentgym search tasks multihop --split test --out tasks.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="search_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("index", help="build an index from a JSONL corpus of {id, title, contents}")
    p.add_argument(
        "corpus",
        help='JSONL file, one {"id", "title", "contents"} object per line; \'wiki\' for the built-in corpus',
    )
    p.add_argument(
        "--backend",
        choices=("bm25s", "lucene"),
        default="bm25s",
        help="bm25s (embedded, default) or lucene (Anserini)",
    )
    p.add_argument("--out", required=True, help="folder to write the index into")
    p.add_argument("--k1", type=float, default=0.9, help="BM25 k1 (default 0.9, as Anserini)")
    p.add_argument("--b", type=float, default=0.4, help="BM25 b (default 0.4, as Anserini)")
    p.add_argument("--threads", type=int, default=None, help="indexing threads (lucene)")
    p.set_defaults(func=_index)

    p = sub.add_parser("query", help="search an index and print the results")
    p.add_argument("index", help="index folder written by `agentgym search index`")
    p.add_argument("text", help="the query")
    p.add_argument("-k", type=int, default=10, help="how many results (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.set_defaults(func=_query)

    p = sub.add_parser("corpus", help="write the offline Wikipedia corpus (CC BY-SA 4.0) as JSONL")
    p.add_argument("--out", required=True, help="JSONL file to write")
    p.set_defaults(func=_corpus)

    p = sub.add_parser("tasks", help="write a generated task set (one split) as JSONL")
    p.add_argument("task_set", choices=("multihop", "singlehop", "trivia", "descriptions"))
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="JSONL file to write")
    p.set_defaults(func=_tasks)


def _index(args: argparse.Namespace) -> int:
    from agentgym.errors import UserError
    from envs.search.backends import build_index
    from envs.search.corpus import wikipedia_corpus_path

    if args.k1 <= 0 or not 0 <= args.b <= 1:
        raise UserError("k1 must be positive and b between 0 and 1.")
    corpus = wikipedia_corpus_path() if args.corpus == "wiki" else args.corpus
    start = time.perf_counter()
    options = {"threads": args.threads} if args.threads else {}
    index = build_index(corpus, args.out, args.backend, args.k1, args.b, **options)
    print(
        f"indexed {len(index):,} documents with {args.backend} into {args.out} in {time.perf_counter() - start:.1f} s"
    )
    index.close()
    return 0


def _query(args: argparse.Namespace) -> int:
    from agentgym.errors import UserError
    from envs.search.backends import load_index

    if args.k < 1:
        raise UserError("-k must be at least 1.")
    index = load_index(args.index)
    hits = index.search(args.text, args.k)
    for rank, hit in enumerate(hits, 1):
        if args.json:
            print(
                json.dumps(
                    {
                        "rank": rank,
                        "id": hit.doc_id,
                        "score": round(hit.score, 4),
                        "title": hit.title,
                        "snippet": hit.snippet,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            print(f"{rank:2d}. {hit.score:7.3f}  [{hit.doc_id}] {hit.title}\n      {hit.snippet}")
    if not hits and not args.json:
        print("no results", file=sys.stderr)
    index.close()
    return 0


def _corpus(args: argparse.Namespace) -> int:
    import shutil

    from envs.search.corpus import WIKIPEDIA_ATTRIBUTION, wikipedia_corpus_path

    shutil.copyfile(wikipedia_corpus_path(), args.out)
    print(f"wrote {args.out}\n{WIKIPEDIA_ATTRIBUTION}")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from agentgym.core import save_tasks
    from envs.search.tasks import wiki_task_set

    tasks = wiki_task_set(args.task_set, args.split, args.seed)
    save_tasks(tasks, args.out)
    print(f"wrote {len(tasks):,} {args.split} tasks of {args.task_set} to {args.out}")
    return 0
