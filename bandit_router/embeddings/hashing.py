"""A dependency-free embedder: signed feature hashing of words, word pairs and character trigrams."""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence

import numpy as np

from bandit_router.embeddings.base import check_texts
from bandit_router.errors import ConfigurationError

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Bag of hashed n-grams, L2-normalised. Deterministic across processes and machines.

    Far weaker than a sentence encoder, but instant and with no dependencies: meant for
    tests, tiny installs and as a fallback.

    >>> emb = HashingEmbedder(dim=32)
    >>> v = emb.embed(["What is 2 + 2?", "what is 2+2"])
    >>> v.shape
    (2, 32)
    >>> bool(abs(float(v[0] @ v[0]) - 1.0) < 1e-12)
    True
    """

    def __init__(self, dim: int = 256, char_ngrams: int = 3) -> None:
        if dim < 2:
            raise ConfigurationError(f"HashingEmbedder dim must be >= 2, got {dim}.")
        self.dim = int(dim)
        self.char_ngrams = int(char_ngrams)
        self.name = f"hashing-{self.dim}"

    def _tokens(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        toks = [f"w:{w}" for w in words]
        toks += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
        if self.char_ngrams > 0:
            n = self.char_ngrams
            for w in words:
                padded = f"<{w}>"
                toks += [f"c:{padded[i : i + n]}" for i in range(max(1, len(padded) - n + 1))]
        return toks

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            for tok in self._tokens(text):
                h = zlib.crc32(tok.encode("utf-8"))
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
