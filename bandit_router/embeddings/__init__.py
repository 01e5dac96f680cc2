"""Sentence embedders: the protocol, the offline default, a hashing fallback, caches."""

from bandit_router.embeddings.base import Embedder, text_key
from bandit_router.embeddings.cache import CachedEmbedder
from bandit_router.embeddings.disk_cache import DiskCachedEmbedder, default_cache_dir
from bandit_router.embeddings.hashing import HashingEmbedder
from bandit_router.embeddings.precomputed import PrecomputedEmbedder
from bandit_router.embeddings.registry import make_embedder
from bandit_router.embeddings.use import UniversalSentenceEncoder

__all__ = [
    "CachedEmbedder",
    "DiskCachedEmbedder",
    "Embedder",
    "HashingEmbedder",
    "PrecomputedEmbedder",
    "UniversalSentenceEncoder",
    "default_cache_dir",
    "make_embedder",
    "text_key",
]
