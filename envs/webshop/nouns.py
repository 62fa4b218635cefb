"""The nouns of a product title, for the type part of the reward.

The original tags titles with spaCy's ``en_core_web_sm`` and keeps tokens tagged
``NOUN`` or ``PROPN``. That model is not published on PyPI by its authors, so we use
the English part-of-speech tagger that ships inside the ``textblob`` wheel (pinned:
``textblob==0.20.1``): the Brill-style lexicon and contextual rules of the Pattern
library (``textblob.en.taggers.PatternTagger``), which needs no download. Tokens tagged
``NN``, ``NNS``, ``NNP`` or ``NNPS`` count as nouns.

Where it can differ from spaCy (documented in docs/webshop.md):

* it is a lexicon tagger, not a neural one: an unknown word is a noun by default,
  a capitalised unknown word a proper noun, so brand names and title-case words are
  nearly always nouns (spaCy mostly agrees on title-case text, not always);
* words the lexicon lists as adjectives or verbs stay so even where spaCy reads them
  as nouns from context (``"Dress"`` in ``"Dress Shirt"``, ``"Wireless"``), and the
  other way round;
* tokenisation: we split on a hyphen or slash followed by a letter, as spaCy's infix
  rules do, and drop tokens without a letter or digit (Pattern tags ``"|"`` as a noun).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from agentgym.errors import require

NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
_INFIX = re.compile(r"(?<=[^\W_])[-/](?=[^\W\d_])")  # spaCy's infix rule: before a letter
_ALNUM = re.compile(r"[^\W_]")
_TAGGER = None
_LOCK = threading.Lock()


def _tagger():
    global _TAGGER
    if _TAGGER is None:
        with _LOCK:
            if _TAGGER is None:
                taggers = require("textblob.en.taggers", "webshop", "the WebShop reward's noun tagger")
                tagger = taggers.PatternTagger()
                tagger.tag("warm up")  # loads the lexicon now, not inside the first step
                _TAGGER = tagger
    return _TAGGER


@lru_cache(maxsize=65536)
def title_nouns(title: str) -> tuple[str, ...]:
    """The lower-cased noun tokens of ``title``, in order (duplicates kept, as a list in the original)."""
    text = _INFIX.sub(" ", title)
    if not text.strip():
        return ()
    return tuple(
        word.lower() for word, tag in _tagger().tag(text) if tag in NOUN_TAGS and _ALNUM.search(word)
    )
