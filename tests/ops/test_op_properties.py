"""Property-based tests (hypothesis): shapes drawn at random, results checked against NumPy and
against finite differences."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitransformer as mt

BINARY_OPS = {
    "add": (mt.add, np.add),
    "sub": (mt.sub, np.subtract),
    "mul": (mt.mul, np.multiply),
    "div": (mt.div, np.divide),
    "maximum": (mt.maximum, np.maximum),
    "minimum": (mt.minimum, np.minimum),
    "pow": (mt.pow, np.power),
}


def values(shape, seed, positive=False):
    rng = np.random.default_rng(seed)
    if positive:
        return rng.uniform(0.5, 2.0, shape)
    return rng.standard_normal(shape)


@given(
    name=st.sampled_from(sorted(BINARY_OPS)),
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=st.integers(0, 2**16),
)
def test_binary_ops_broadcast_like_numpy_and_pass_gradcheck(name, shapes, seed):
    ours, reference = BINARY_OPS[name]
    a = values(shapes.input_shapes[0], seed, positive=name == "pow")
    b = values(shapes.input_shapes[1], seed + 1, positive=name == "div")
    got = ours(mt.tensor(a), mt.tensor(b))
    np.testing.assert_allclose(got.numpy(), reference(a, b), rtol=1e-12)
    assert got.shape == shapes.result_shape
    mt.gradcheck(ours, mt.tensor(a), mt.tensor(b))


@given(
    shapes=hnp.mutually_broadcastable_shapes(
        signature="(m?,n),(n,p?)->(m?,p?)", max_dims=4, max_side=3
    ),
    seed=st.integers(0, 2**16),
)
def test_matmul_shape_signatures_match_numpy_and_pass_gradcheck(shapes, seed):
    a = values(shapes.input_shapes[0], seed)
    b = values(shapes.input_shapes[1], seed + 1)
    got = mt.matmul(mt.tensor(a), mt.tensor(b))
    want = np.matmul(a, b)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    mt.gradcheck(mt.matmul, mt.tensor(a), mt.tensor(b))


REDUCTIONS = ["logsumexp", "max", "mean", "min", "sum", "var"]


def reduce_ours(name, x, axis, keepdims):
    return getattr(x, name)(axis=axis, keepdims=keepdims)


def reduce_numpy(name, x, axis, keepdims):
    if name == "logsumexp":
        return np.log(np.exp(x).sum(axis, keepdims=keepdims))
    return getattr(x, name)(axis, keepdims=keepdims)


@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    ndim = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
    ))
    return shape, axis


@given(
    name=st.sampled_from(REDUCTIONS),
    shape_axis=shape_and_axis(),
    keepdims=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_reductions_over_random_axes_match_numpy_and_pass_gradcheck(name, shape_axis, keepdims,
                                                                    seed):
    shape, axis = shape_axis
    x = values(shape, seed)  # continuous values: no ties for max/min
    got = reduce_ours(name, mt.tensor(x), axis, keepdims)
    want = reduce_numpy(name, x, axis, keepdims)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    mt.gradcheck(lambda t: reduce_ours(name, t, axis, keepdims), mt.tensor(x))


@given(
    rows=st.integers(1, 5),
    index=st.lists(st.integers(0, 4), min_size=1, max_size=8),
    seed=st.integers(0, 2**16),
)
def test_indexing_with_repeated_indices_scatters_every_repeat(rows, index, seed):
    index = [i % rows for i in index]
    x = values((rows, 3), seed)
    upstream = values((len(index), 3), seed + 1)
    t = mt.tensor(x, requires_grad=True)
    out = t[mt.tensor(index)]
    np.testing.assert_array_equal(out.numpy(), x[index])
    out.backward(mt.tensor(upstream))
    expected = np.zeros_like(x)
    for position, row in enumerate(index):
        expected[row] += upstream[position]
    np.testing.assert_allclose(t.grad, expected, rtol=1e-12)
    mt.gradcheck(lambda u: u[mt.tensor(index)], mt.tensor(x))
