"""Positional constructors of frozen dataclass records, for the per-query hot path.

A frozen dataclass's generated ``__init__`` sets every field through
``object.__setattr__`` (a Python-level call per field); ``record_maker`` builds a
constructor that writes the fields straight into the instance (its ``__dict__``, or its
slots through their descriptors), 2-2.5x cheaper for the 5-15 field records the router
makes on every query (``tests/test_router_speed.py`` checks they are equal to what the
class builds, and still frozen).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import fields
from typing import Any


def record_maker(cls: type) -> Callable[..., Any]:
    """A constructor of the frozen dataclass ``cls`` from all its fields, positionally,
    that skips the per-field ``object.__setattr__`` of the generated ``__init__``. Only
    for plain frozen dataclasses (with or without ``__slots__``) without
    ``__post_init__``; anything else gets ``cls`` itself. The object is equal to
    ``cls(*values)``.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Point:
    ...     x: float
    ...     y: float
    >>> make = record_maker(Point)
    >>> make(1.0, 2.0) == Point(1.0, 2.0), make.__name__
    (True, 'make_Point')
    >>> make(1.0)
    Traceback (most recent call last):
    ...
    TypeError: make_Point() missing 1 required positional argument: 'y'
    """
    params = getattr(cls, "__dataclass_params__", None)  # set on dataclasses only
    if params is None or not params.frozen or hasattr(cls, "__post_init__"):
        return cls
    names = [f.name for f in fields(cls)]
    if any(keyword.iskeyword(n) or not n.isidentifier() or n.startswith("_r_") for n in names):
        return cls  # pragma: no cover - no record of ours has such a field
    args = ", ".join(names)
    env: dict[str, Any] = {"_r_new": object.__new__, "_r_cls": cls}
    if "__slots__" in cls.__dict__:
        for n in names:  # the slot's descriptor: what object.__setattr__ ends up calling
            env[f"_r_set_{n}"] = cls.__dict__[n].__set__
        body = "".join(f"    _r_set_{n}(obj, {n})\n" for n in names)
    else:
        body = "    d = obj.__dict__\n" + "".join(f"    d[{n!r}] = {n}\n" for n in names)
    src = f"def make_{cls.__name__}({args}):\n    obj = _r_new(_r_cls)\n{body}    return obj\n"
    exec(src, env)  # the source is built from the dataclass's own field names
    make = env[f"make_{cls.__name__}"]
    make.__doc__ = f"``{cls.__name__}(*fields)`` without the per-field setattr."
    return make
