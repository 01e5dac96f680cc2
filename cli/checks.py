"""Checks of command-line values that run before any embedding, training or replay.

Every check turns a bad value into ``typer.BadParameter`` (exit code 2, one line naming
the flag, no traceback): a typo should cost a second, not minutes of embedding first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import typer

from bandit_router.errors import BanditRouterError, ConfigurationError

#: options the simulator adds to the prior policies (``simulations.replay.build_policy``)
PRIOR_EXTRA = {"prior_scale": "float"}


@contextlib.contextmanager
def usage_errors(flag: str | None = None) -> Iterator[None]:
    """Turn a ``BanditRouterError`` raised inside into a usage error (exit code 2).

    >>> with contextlib.suppress(typer.BadParameter), usage_errors("--set"):
    ...     raise ConfigurationError("alpha must be >= 0")
    """
    try:
        yield
    except BanditRouterError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


def _extra(name: str) -> dict[str, str]:
    from bandit_router.policies import PRIOR_POLICIES

    return dict(PRIOR_EXTRA) if name in PRIOR_POLICIES else {}


def policy_settings(
    names: Sequence[str], items: Sequence[str] | None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``--set KEY=VALUE`` items -> the typed options of every policy in ``names``.

    A key goes to the policies that have it (``-p linucb,lints --set alpha=0.5`` sets
    LinUCB's alpha and leaves LinTS alone, with a note); a key no chosen policy has, a value
    of the wrong type or out of range, and ``seed`` (set by ``--seed/--seeds``) are refused
    with a message naming ``--set``. Returns ``({name: options}, notes)``.

    >>> opts, notes = policy_settings(["linucb", "lints"], ["alpha=0.5"])
    >>> opts, notes
    ({'linucb': {'alpha': 0.5}, 'lints': {}}, ['--set alpha applies to linucb, not to lints'])
    """
    from bandit_router.policies.registry import (
        SET_BY_FLAGS,
        parse_policy_options,
        policy_options,
    )

    items = list(items or [])
    keys: dict[str, str] = {}
    with usage_errors():
        for item in items:
            if "=" not in item or not item.split("=", 1)[0].strip():
                raise ConfigurationError(
                    f"--set takes KEY=VALUE (e.g. --set alpha=0.5), got {item!r}."
                )
            keys[item] = item.split("=", 1)[0].strip()
        takes = {n: {**policy_options(n), **_extra(n)} for n in names}
        notes: list[str] = []
        for item, key in keys.items():
            users = [n for n in names if key in takes[n]]
            if users:
                others = [n for n in names if n not in users]
                if others:
                    notes.append(
                        f"--set {key} applies to {', '.join(users)}, not to {', '.join(others)}"
                    )
                continue
            if key in SET_BY_FLAGS:
                raise ConfigurationError(f"--set {item}: {SET_BY_FLAGS[key]}.")
            listed = "; ".join(f"{n}: {', '.join(sorted(takes[n])) or 'none'}" for n in names)
            raise ConfigurationError(
                f"--set {item}: no chosen policy has an option {key!r}. Options: {listed}."
            )
        out = {
            n: parse_policy_options(
                n, [i for i, k in keys.items() if k in takes[n]], extra=_extra(n)
            )
            for n in names
        }
        for n, kw in out.items():
            scale = kw.get("prior_scale")
            if scale is not None and not scale > 0:
                raise ConfigurationError(
                    f"--set prior_scale={scale:g}: prior_scale must be positive ({n})."
                )
    return out, notes


def check_fixed_models(names: Sequence[str], models: Sequence[str], *, where: str) -> None:
    """``-p fixed:<model>`` must name one of ``models`` (``fixed:best`` and
    ``fixed:expensive`` are always fine); ``where`` says where the models come from.

    >>> check_fixed_models(["fixed:a", "fixed:best"], ["a", "b"], where="the table")
    """
    bad = [
        n
        for n in names
        if n.startswith("fixed:")
        and n.split(":", 1)[1] not in models
        and n not in ("fixed:best", "fixed:expensive")
    ]
    if bad:
        raise typer.BadParameter(
            f"{', '.join(bad)} names no model of {where}; the models are: "
            f"{', '.join(models)} (or fixed:best, fixed:expensive).",
            param_hint="--policy",
        )


def check_allocator(spec: str) -> None:
    """``--allocator`` must be auto, knapsack or affordable (and available)."""
    from simulations.replay import make_allocator

    with usage_errors("--allocator"):
        make_allocator(spec)


def check_replay_options(**options: Any) -> Any:
    """Build the ``ReplayConfig`` of ``--order/--delay/--noise/--flip/--learn-fraction`` now
    (its own checks), with the flag in the message."""
    from simulations.replay import ReplayConfig

    with usage_errors("--order/--delay"):
        return ReplayConfig(**options)


def check_users(spec: str) -> None:
    """``--users`` is single, column:NAME or hash:N (the column is checked once the table is
    read, still before embedding)."""
    import re

    s = (spec or "single").strip()
    if s == "single" or (s.startswith("column:") and len(s) > 7):
        return
    m = re.fullmatch(r"hash:(\d+)", s)
    if m and int(m.group(1)) >= 1:
        return
    raise typer.BadParameter(
        f"unknown users spec {spec!r}; use single, column:NAME or hash:N (N >= 1).",
        param_hint="--users",
    )


def check_input_file(path: Path | None, flag: str) -> None:
    """A file given on the command line exists and is a file."""
    if path is None:
        return
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist.", param_hint=flag)
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; give a file.", param_hint=flag)


def load_prior_file(path: Path, flag: str = "--prior") -> Any:
    """Load a prior artifact, with our own message for a file that is not one (not numpy's
    advice about pickles)."""
    import zipfile

    from simulations.pipeline import load_prior

    check_input_file(path, flag)
    if not zipfile.is_zipfile(path):
        raise typer.BadParameter(
            f"{path} is not a prior file: a prior is the .npz archive `bandit-router "
            "warm-start --out FILE` writes, and this file is not an archive.",
            param_hint=flag,
        )
    with usage_errors(flag):
        return load_prior(path)


def check_output_file(path: Path | None, flag: str, suffixes: Sequence[str]) -> None:
    """An output file: its folder exists, it is not a folder, its suffix is one we write."""
    if path is None:
        return
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; give a file name.", param_hint=flag)
    if not path.expanduser().parent.exists():
        raise typer.BadParameter(
            f"the folder {path.parent} does not exist; create it first.", param_hint=flag
        )
    if path.suffix.lower() not in suffixes:
        raise typer.BadParameter(
            f"{path.name}: write a {' or '.join(suffixes)} file.", param_hint=flag
        )
