"""Containers of tables (ConcatTable, ParallelTable) and the table modules."""
import numpy
import pytest

import nnlite as nn
from tests.helpers import assert_jacobian, host, on, rand

F32 = numpy.float32


def f32(*shape):
    return numpy.ones(shape, dtype=F32)


# ------------------------------------------------------------------ ConcatTable
def test_concat_table_jacobian_batched_and_unbatched(xp, rng):
    m = on(xp, nn.ConcatTable(nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 4), nn.Tanh())))
    assert_jacobian(m, rand(xp, rng, 2, 3))
    assert_jacobian(m, rand(xp, rng, 3))


def test_concat_table_matches_its_children_run_alone(xp, rng):
    m = on(xp, nn.ConcatTable(nn.Linear(3, 2), nn.Tanh()))
    x = rand(xp, rng, 4, 3)
    out = host(m.forward(x))
    w, b = host(m[0].weight), host(m[0].bias)
    numpy.testing.assert_allclose(out[0], host(x) @ w.T + b, rtol=1e-12)
    numpy.testing.assert_allclose(out[1], numpy.tanh(host(x)), rtol=1e-12)
    go = [rand(xp, rng, 4, 2), rand(xp, rng, 4, 3)]
    gi = host(m.backward(x, go))
    ref = host(go[0]) @ w + host(go[1]) * (1 - numpy.tanh(host(x)) ** 2)
    numpy.testing.assert_allclose(gi, ref, rtol=1e-12)


def test_concat_table_sums_table_gradients_leaf_wise(xp, rng):
    m = on(xp, nn.ConcatTable(nn.SelectTable(1), nn.CAddTable(), nn.Identity()))
    x = [rand(xp, rng, 2, 3), rand(xp, rng, 2, 3)]
    assert_jacobian(m, x)
    go = [rand(xp, rng, 2, 3), rand(xp, rng, 2, 3), [rand(xp, rng, 2, 3), rand(xp, rng, 2, 3)]]
    gi = host(m.backward(x, go))
    g = host(go)
    numpy.testing.assert_allclose(gi[0], g[1] + g[2][0])
    numpy.testing.assert_allclose(gi[1], g[0] + g[1] + g[2][1])


def test_concat_table_accumulates_children_parameters_with_scale(rng):
    m = nn.ConcatTable(nn.Linear(3, 2), nn.Linear(3, 2)).double()
    x, go = rng.standard_normal((2, 3)), [rng.standard_normal((2, 2)), rng.standard_normal((2, 2))]
    m.zeroGradParameters()
    m.forward(x)
    m.backward(x, go)
    m.accGradParameters(x, go, scale=0.5)
    numpy.testing.assert_allclose(m[1].gradWeight, 1.5 * go[1].T @ x)


def test_concat_table_errors_name_the_child():
    m = nn.ConcatTable(nn.Linear(3, 2), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"ConcatTable \(1\) nn.Linear.*must be 4, got 3"):
        m.forward(f32(2, 3))
    with pytest.raises(ValueError, match="gradOutput must be a list of 2 arrays, got 1"):
        nn.ConcatTable(nn.Tanh(), nn.Tanh()).backward(f32(3), [f32(3)])
    with pytest.raises(ValueError, match="no children"):
        nn.ConcatTable().forward(f32(3))


def test_concat_table_rejects_a_child_gradient_unlike_the_input():
    class Half(nn.Identity):
        def updateGradInput(self, input, gradOutput):
            self.gradInput = gradOutput[:1]
            return self.gradInput
    m = nn.ConcatTable(nn.Identity(), Half())
    x = f32(2, 3)
    m.forward(x)
    with pytest.raises(ValueError, match=r"gradInput of child \(1\) must have the shape of input"):
        m.backward(x, [x, x])


# ---------------------------------------------------------------- ParallelTable
def test_parallel_table_jacobian_batched_and_unbatched(xp, rng):
    m = on(xp, nn.ParallelTable(nn.Linear(3, 2), nn.Tanh()))
    assert_jacobian(m, [rand(xp, rng, 2, 3), rand(xp, rng, 2, 4)])
    assert_jacobian(m, [rand(xp, rng, 3), rand(xp, rng, 4)])


def test_parallel_table_routes_entry_i_to_child_i(xp, rng):
    m = on(xp, nn.ParallelTable(nn.Tanh(), nn.Identity()))
    x = [rand(xp, rng, 3), rand(xp, rng, 2)]
    out = host(m.forward(x))
    numpy.testing.assert_allclose(out[0], numpy.tanh(host(x[0])))
    numpy.testing.assert_allclose(out[1], host(x[1]))


def test_parallel_table_bad_inputs():
    m = nn.ParallelTable(nn.Tanh(), nn.Linear(3, 2))
    with pytest.raises(TypeError, match="ParallelTable: input must be a list"):
        m.forward(f32(3))
    with pytest.raises(ValueError, match="ParallelTable: input must be a list of 2 arrays, got 3"):
        m.forward([f32(3), f32(3), f32(3)])
    with pytest.raises(ValueError, match=r"ParallelTable \(1\) nn.Linear"):
        m.forward([f32(3), f32(4)])


def test_branch_repr_draws_a_tree():
    text = repr(nn.ConcatTable(nn.Linear(3, 4), nn.ParallelTable(nn.Tanh(), nn.Identity())))
    lines = text.split("\n")
    assert lines[:3] == ["nn.ConcatTable {", "  input", "    |`-> (0): nn.Linear(3 -> 4)"]
    assert "     `-> (1): nn.ParallelTable {" in lines
    assert "              `-> (1): nn.Identity" in lines
    assert lines[-2:] == ["     ... -> output", "}"]


# ------------------------------------------------------------ selecting tables
def test_identity_passes_arrays_and_tables(xp, rng):
    m = nn.Identity()
    x = [rand(xp, rng, 2), [rand(xp, rng, 3)]]
    assert m.forward(x) is x
    assert_jacobian(m, x)
    assert_jacobian(m, rand(xp, rng, 2, 3))
    with pytest.raises(ValueError, match=r"gradOutput\[1\]\[0\] must have the shape of input\[1\]\[0\]"):
        m.backward(x, [x[0], [rand(xp, rng, 4)]])


def test_select_table_forward_and_zero_gradients(xp, rng):
    x = [rand(xp, rng, 2, 3), [rand(xp, rng, 2), rand(xp, rng, 4)], rand(xp, rng, 5)]
    for index in (1, -1, 0):
        m = nn.SelectTable(index)
        assert m.forward(x) is x[index]
        assert_jacobian(m, x)
    m = nn.SelectTable(1)
    gi = host(m.backward(x, [rand(xp, rng, 2), rand(xp, rng, 4)]))
    assert [a.shape for a in (gi[0], gi[1][0], gi[1][1], gi[2])] == [(2, 3), (2,), (4,), (5,)]
    assert not gi[0].any() and not gi[2].any() and gi[1][0].any()


def test_select_table_bad_inputs():
    with pytest.raises(ValueError, match=r"nn.SelectTable: index 2 is out of range for a table of 2"):
        nn.SelectTable(2).forward([f32(2), f32(2)])
    with pytest.raises(ValueError, match=r"index -3 is out of range"):
        nn.SelectTable(-3).forward([f32(2), f32(2)])
    with pytest.raises(TypeError, match="SelectTable: input must be a list"):
        nn.SelectTable(0).forward(f32(2))
    with pytest.raises(TypeError, match=r"input\[1\] must be an array or a \(nested\) list"):
        nn.SelectTable(0).forward([f32(2), "x"])
    with pytest.raises(ValueError, match=r"gradOutput must have the shape of input\[0\] \(2,\), got \(3,\)"):
        nn.SelectTable(0).backward([f32(2)], f32(3))


def test_narrow_table(xp, rng):
    x = [rand(xp, rng, 2), rand(xp, rng, 3), [rand(xp, rng, 1)], rand(xp, rng, 2)]
    m = nn.NarrowTable(1, 2)
    out = m.forward(x)
    assert len(out) == 2 and out[0] is x[1] and out[1] is x[2]
    assert_jacobian(m, x)
    assert_jacobian(nn.NarrowTable(-1), x)
    assert nn.NarrowTable(-2).forward(x) == [x[2]]
    gi = host(m.backward(x, [rand(xp, rng, 3), [rand(xp, rng, 1)]]))
    assert not gi[0].any() and not gi[3].any() and gi[1].any()


def test_narrow_table_bad_inputs():
    with pytest.raises(ValueError, match=r"NarrowTable: entries 1..3 asked of a table of 3"):
        nn.NarrowTable(1, 3).forward([f32(1)] * 3)
    with pytest.raises(ValueError, match="length must be at least 1"):
        nn.NarrowTable(0, 0)
    with pytest.raises(ValueError, match=r"gradOutput must be a list of 1 entries"):
        nn.NarrowTable(0).backward([f32(1), f32(1)], [f32(1), f32(1)])


# ------------------------------------------------------------ arithmetic tables
@pytest.mark.parametrize("shape", [(2, 3), (3,)])
def test_cadd_and_cmul_jacobians(xp, rng, shape):
    x = [rand(xp, rng, *shape) for _ in range(3)]
    assert_jacobian(nn.CAddTable(), x)
    assert_jacobian(nn.CMulTable(), x)


def test_cadd_and_cmul_match_numpy(xp, rng):
    x = [rand(xp, rng, 2, 3) for _ in range(3)]
    a, b, c = host(x)
    numpy.testing.assert_allclose(host(nn.CAddTable().forward(x)), a + b + c, rtol=1e-12)
    numpy.testing.assert_allclose(host(nn.CMulTable().forward(x)), a * b * c, rtol=1e-12)


def test_cmul_gradient_is_exact_where_an_input_is_zero(xp, rng):
    x = [rand(xp, rng, 4), rand(xp, rng, 4)]
    x[0][1] = 0
    go = rand(xp, rng, 4)
    gi = host(nn.CMulTable().backward(x, go))
    numpy.testing.assert_allclose(gi[0], host(go) * host(x[1]), rtol=1e-12)
    numpy.testing.assert_allclose(gi[1], host(go) * host(x[0]), rtol=1e-12)
    assert numpy.isfinite(gi[1]).all() and gi[1][1] == 0


def test_cadd_gradient_entries_are_distinct_arrays(rng):
    gi = nn.CAddTable().backward([rng.standard_normal(3)] * 2, rng.standard_normal(3))
    gi[0] += 1
    assert not numpy.allclose(gi[0], gi[1])


@pytest.mark.parametrize("cls", [nn.CAddTable, nn.CMulTable])
def test_elementwise_tables_bad_inputs(cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"nn.{name}: input\[1\] must have the shape of input\[0\] "
                                         rf"\(2, 3\), got \(3, 2\)"):
        cls().forward([f32(2, 3), f32(3, 2)])
    with pytest.raises(TypeError, match=rf"nn.{name}: input\[1\] must") as err:
        cls().forward([f32(2), numpy.ones(2)])
    assert "float32" in str(err.value) and "float64" in str(err.value)
    with pytest.raises(ValueError, match="at least 1 arrays, got 0"):
        cls().forward([])
    with pytest.raises(TypeError, match=r"input\[0\] must be floating point"):
        cls().forward([numpy.ones(2, dtype=int)])
    with pytest.raises(ValueError, match=r"gradOutput must have the shape of the inputs"):
        cls().backward([f32(2), f32(2)], f32(3))


# ------------------------------------------------------------- join and split
def test_join_table_jacobian_and_reference(xp, rng):
    x = [rand(xp, rng, 2, 3), rand(xp, rng, 2, 1)]
    m = nn.JoinTable(1)
    numpy.testing.assert_allclose(host(m.forward(x)), numpy.concatenate(host(x), axis=1))
    assert_jacobian(m, x)
    assert_jacobian(nn.JoinTable(0), [rand(xp, rng, 2), rand(xp, rng, 3)])
    gi = m.backward(x, rand(xp, rng, 2, 4))
    assert all(g.flags.c_contiguous for g in gi) and [g.shape for g in gi] == [(2, 3), (2, 1)]


def test_join_table_dimension_rules(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    # nInputDims=1: dimension 0 counts from the first non-batch dim of (B, n) inputs
    assert nn.JoinTable(0, nInputDims=1).forward([a, b]).shape == (2, 6)
    assert nn.JoinTable(0, nInputDims=1).forward([a[0], b[0]]).shape == (6,)
    assert nn.JoinTable(-1).forward([a, b]).shape == (2, 6)
    assert nn.JoinTable(-2).forward([a, b]).shape == (4, 3)


def test_join_table_bad_inputs():
    with pytest.raises(ValueError, match=r"nn.JoinTable: input\[1\] has shape \(3, 3\) but input\[0\] "
                                         r"has \(2, 3\); they must agree on every dim but 1"):
        nn.JoinTable(1).forward([f32(2, 3), f32(3, 3)])
    with pytest.raises(ValueError, match=r"input\[1\] has shape \(2, 3, 1\)"):
        nn.JoinTable(0).forward([f32(2, 3), f32(2, 3, 1)])
    with pytest.raises(ValueError, match=r"dimension 2 \(nInputDims=None\) is out of range for 2-D"):
        nn.JoinTable(2).forward([f32(2, 3), f32(2, 3)])
    with pytest.raises(ValueError, match=r"gradOutput must be of shape \(2, 5\), got shape \(2, 4\)"):
        nn.JoinTable(1).backward([f32(2, 3), f32(2, 2)], f32(2, 4))


def test_split_table_jacobian_and_reference(xp, rng):
    x = rand(xp, rng, 2, 3, 2)
    for dim in (0, 1, -1):
        m = nn.SplitTable(dim)
        out = host(m.forward(x))
        ref = [numpy.take(host(x), k, axis=dim) for k in range(x.shape[dim])]
        assert len(out) == len(ref) and all(numpy.array_equal(o, r) for o, r in zip(out, ref))
        assert all(o.flags.c_contiguous for o in m.output)
        assert_jacobian(m, x)
    assert len(nn.SplitTable(0, nInputDims=2).forward(x)) == 3  # batched: split the dim after B
    assert len(nn.SplitTable(0, nInputDims=3).forward(x)) == 2


def test_split_table_bad_inputs():
    with pytest.raises(ValueError, match="nn.SplitTable: dimension 3"):
        nn.SplitTable(3).forward(f32(2, 3))
    with pytest.raises(ValueError, match=r"gradOutput must be a list of 2 entries like the slices"):
        nn.SplitTable(0).backward(f32(2, 3), [f32(3)])
    with pytest.raises(ValueError, match=r"gradOutput\[1\] must have the shape of the slices of "
                                         r"input along dim 1\[1\] \(2,\), got \(3,\)"):
        nn.SplitTable(1).backward(f32(2, 2), [f32(2), f32(3)])
    with pytest.raises(TypeError, match="SplitTable: input must be a NumPy or CuPy array"):
        nn.SplitTable(0).forward([f32(2)])


def test_flatten_table_flattens_and_rebuilds(xp, rng):
    x = [rand(xp, rng, 2), [rand(xp, rng, 3), [rand(xp, rng, 1)]], rand(xp, rng, 2, 2)]
    m = nn.FlattenTable()
    out = m.forward(x)
    assert [o is e for o, e in zip(out, [x[0], x[1][0], x[1][1][0], x[2]])] == [True] * 4
    assert_jacobian(m, x)
    go = [rand(xp, rng, 2), rand(xp, rng, 3), rand(xp, rng, 1), rand(xp, rng, 2, 2)]
    gi = m.backward(x, go)
    assert gi[1][1][0] is go[2] and gi[2] is go[3]
    with pytest.raises(ValueError, match=r"gradOutput must be a list of 4 entries like the flattened"):
        m.backward(x, go[:3])
    with pytest.raises(TypeError, match=r"FlattenTable: input\[1\]\[0\] must be an array or"):
        m.forward([go[0], [3]])


def test_table_modules_have_no_parameters_and_print_their_arguments():
    assert nn.Sequential(nn.SelectTable(0), nn.JoinTable(1)).parameters() == ([], [])
    assert repr(nn.SelectTable(-1)) == "nn.SelectTable(-1)"
    assert repr(nn.NarrowTable(1, 2)) == "nn.NarrowTable(1, 2)"
    assert repr(nn.JoinTable(0, nInputDims=3)) == "nn.JoinTable(0, nInputDims=3)"
