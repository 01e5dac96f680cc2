"""Outcome tables for the simulator: the core's one loader, re-exported.

``OutcomeTable`` and ``load_outcomes`` live in ``bandit_router.warm_start.outcomes`` (the
warm start and the simulator read outcome tables through the same function); this module
keeps the simulator's import path.

>>> import pandas as pd
>>> df = pd.DataFrame({"sample_id": ["a"], "prompt": ["p"], "m1": [1.0], "m1|total_cost": [0.1],
...                    "m2": [0.0], "m2|total_cost": [0.2]})
>>> OutcomeTable.from_frame(df).models
['m1', 'm2']
"""

from __future__ import annotations

from bandit_router.warm_start.outcomes import (
    RESPONSE_SUFFIX,
    OutcomeTable,
    OutcomeTableError,
    load_outcomes,
    read_table,
)

__all__ = ["RESPONSE_SUFFIX", "OutcomeTable", "OutcomeTableError", "load_outcomes", "read_table"]
