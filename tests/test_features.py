"""Featurizer: projection, normalisation, bias and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bandit_router.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from bandit_router.features import Featurizer, Projection


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, (5, 7), elements=st.floats(-1e3, 1e3)))
def test_rows_are_unit_norm_plus_bias(X):
    f = Featurizer(7)
    Z = f.transform(X)
    assert Z.shape == (5, 8)
    np.testing.assert_array_equal(Z[:, -1], 1.0)
    norms = np.linalg.norm(Z[:, :-1], axis=1)
    nonzero = (X != 0).any(axis=1)
    np.testing.assert_allclose(norms[nonzero], 1.0, rtol=1e-9)
    np.testing.assert_array_equal(norms[~nonzero], 0.0)


def test_projection_is_applied_before_normalising():
    W = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    f = Featurizer(3, Projection(W, np.array([0.0, 1.0])))
    assert f.dim == 3
    np.testing.assert_allclose(f.transform_one(np.array([3.0, 1.5, 9.0])), [0.6, 0.8, 1.0])


def test_errors_say_what_is_wrong():
    f = Featurizer(4)
    with pytest.raises(DimensionMismatchError, match="4 columns"):
        f.transform(np.ones((2, 5)))
    with pytest.raises(InvalidInputError, match="NaN"):
        f.transform(np.array([[1.0, np.nan, 0.0, 0.0]]))
    with pytest.raises(DimensionMismatchError, match="same embedder"):
        Featurizer(5, Projection(np.ones((2, 4)), np.zeros(2)))
    with pytest.raises(ConfigurationError):
        Projection(np.ones((2, 4)), np.zeros(3))
