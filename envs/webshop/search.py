"""BM25 product search on the project's search backends, one index per catalog per process.

Each product is one document, as the original's indexing script builds it: the
lower-cased title, description, first bullet point and ``"name: v1, v2, and name: ..."``
option text, joined by spaces. The original searches it with Lucene through pyserini
(BM25, k1 = 0.9, b = 0.4, Lucene's English analyzer); here the embedded default is
bm25s with the same analyzer and parameters, and ``backend="lucene"`` runs Anserini
itself (see :mod:`envs.search.backends`). A search returns the top 50 products.

Every environment of a process that uses the same catalog and backend shares one
index (built on first use; the Lucene one is kept on disk in the cache, keyed by the
documents' hash), and the last few hundred distinct queries are remembered, since
agents repeat them and each page of results re-reads the same query.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from agentgym.errors import UserError
from envs.search.backends import SearchIndex
from envs.search.backends.base import BACKENDS
from envs.search.corpus import Document
from envs.webshop.catalog import Catalog, Product

SEARCH_RETURN_N = 50
QUERY_CACHE_SIZE = 512


def product_document(product: Product) -> Document:
    """The text the original indexes for a product."""
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in product.options.items())
    contents = " ".join([product.title, product.description, product.bullets[0], option_text]).lower()
    return Document(id=product.asin, title="", contents=contents)


class ProductSearch:
    """Top-50 product search over a catalog, shared by all sessions of a process."""

    def __init__(self, catalog: Catalog, index: SearchIndex):
        self.catalog = catalog
        self.index = index
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def search(self, query: str) -> tuple[str, ...]:
        """The asins of the best (at most 50) products for ``query``, best first."""
        with self._lock:
            hit = self._cache.get(query)
            if hit is not None:
                self._cache.move_to_end(query)
                return hit
        by_asin = self.catalog.by_asin
        asins = tuple(a for a, _ in self.index.search_ids(query, SEARCH_RETURN_N) if a in by_asin)
        with self._lock:
            self._cache[query] = asins
            if len(self._cache) > QUERY_CACHE_SIZE:
                self._cache.popitem(last=False)
        return asins


def build_product_index(catalog: Catalog, backend: str = "bm25s") -> SearchIndex:
    """A fresh index of ``catalog`` (bm25s in memory; Lucene in the cache folder)."""
    if backend not in BACKENDS:
        raise UserError(f"unknown search backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    docs = [product_document(p) for p in catalog.products]
    if backend == "bm25s":
        from envs.search.backends.bm25s_backend import Bm25sIndex

        return Bm25sIndex.from_documents(docs)
    from envs.search.backends import build_index, load_index
    from envs.search.cache import cache_root

    digest = hashlib.sha256("\n".join(f"{d.id}\t{d.contents}" for d in docs).encode()).hexdigest()[:16]
    folder = cache_root() / "webshop" / "indexes" / f"{backend}-{digest}"
    if (folder / "meta.json").is_file():
        return load_index(folder)
    return build_index(docs, folder, backend)


_SEARCHES: dict[tuple[int, str], ProductSearch] = {}
_LOCK = threading.Lock()


def shared_search(catalog: Catalog, backend: str = "bm25s") -> ProductSearch:
    """The process-wide :class:`ProductSearch` for ``catalog`` and ``backend``."""
    key = (id(catalog), backend)
    with _LOCK:
        search = _SEARCHES.get(key)
        if search is None:
            search = _SEARCHES[key] = ProductSearch(catalog, build_product_index(catalog, backend))
        return search
