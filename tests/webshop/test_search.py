"""Product search: the original's document text, BM25 on our backends, one index per catalog per process."""

from __future__ import annotations

import pytest

from envs.webshop.catalog import load_catalog, shared_catalog
from envs.webshop.search import SEARCH_RETURN_N, build_product_index, product_document, shared_search
from tests.search.conftest import needs_lucene


def test_document_is_lowercased_title_description_first_bullet_options(tiny_dir):
    socks = load_catalog(tiny_dir).by_asin["B0SOCKS001"]
    doc = product_document(socks)
    assert doc.id == "B0SOCKS001" and doc.title == ""
    assert doc.contents == (
        "wool hiking socks warm socks. cushioned sole for long hikes. "
        "color: black, charcoal grey, and size: large, small"
    )


def test_search_ranks_and_caps_at_fifty():
    catalog = shared_catalog()
    search = shared_search(catalog)
    target = catalog.products[7]
    assert search.search(target.title.lower())[0] == target.asin
    assert len(search.search("made")) == SEARCH_RETURN_N  # every description says "made for"
    assert search.search("zzzzqqq") == ()
    assert search.search("made") is search.search("made")  # remembered


def test_one_index_per_catalog_and_backend():
    catalog = shared_catalog()
    assert shared_search(catalog) is shared_search(catalog)
    assert shared_search(catalog).index is shared_search(shared_catalog()).index


@pytest.mark.lucene
@pytest.mark.slow
@needs_lucene
def test_lucene_backend_agrees_with_bm25s(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path))
    catalog = shared_catalog()
    lucene = build_product_index(catalog, "lucene")
    bm25s = build_product_index(catalog, "bm25s")
    for product in catalog.products[:20]:
        query = product.title.lower()
        assert lucene.search_ids(query, 1)[0][0] == bm25s.search_ids(query, 1)[0][0] == product.asin
    lucene.close()
    from envs.webshop.env import WebShopEnv

    env = WebShopEnv(split="test", backend="lucene")
    for i in range(5):
        env.reset(options={"goal_index": i})
        while not env.done:
            env.step(env.oracle_action())
        assert env.page.reward.reward == 1.0
