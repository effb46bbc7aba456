"""ConvLSTM and UntiedConvLSTM (SPEC §3): BPTT gradients, forward against NumPy,
remember/forget, caches, parameters and errors. LSTM and Sequencer: test_recurrent_seq.py."""
import numpy
import pytest

import nnlite as nn
from nnlite.conv_ops import out_size
from tests.helpers import host, on, rand
from tests.recurrent_helpers import FromState, assert_gradients

CONV_CLASSES = [nn.ConvLSTM, nn.UntiedConvLSTM]


def small(cls, stride=1):
    return cls(2, 3, 5, 3, 3, stride=stride)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("cls", CONV_CLASSES)
def test_jacobian_fresh_batched_sequence(xp, rng, cls):
    m = on(xp, small(cls))
    assert_gradients(m, rand(xp, rng, 3, 2, 2, 5, 5))


@pytest.mark.parametrize("cls", CONV_CLASSES)
def test_jacobian_unbatched_from_user_initial_state(xp, rng, cls):
    m = on(xp, small(cls))
    m.h0, m.c0 = rand(xp, rng, 3, 4, 4), rand(xp, rng, 3, 4, 4)
    assert_gradients(m, list(rand(xp, rng, 3, 2, 4, 4)), [(m.h0, m.gradH0), (m.c0, m.gradC0)])


@pytest.mark.parametrize("cls", CONV_CLASSES)
def test_jacobian_of_a_second_sequence_with_remember(xp, rng, cls):
    m = on(xp, small(cls)).remember("both")
    m.forward(rand(xp, rng, 3, 2, 2, 4, 4))
    assert m.lastState is not None
    assert_gradients(FromState(m, m.lastState), rand(xp, rng, 3, 2, 2, 4, 4))


@pytest.mark.parametrize("cls", CONV_CLASSES)
def test_fourier_path_gradients_and_no_spectrum_kept(xp, rng, cls, monkeypatch):
    """On the Fourier path (forced) every gradient passes the Jacobian test, and no kernel
    spectrum outlives a forward or a backward (``ConvLSTM._memo``)."""
    monkeypatch.setattr(nn.conv_ops, "FORWARD_PATH", "fourier")
    monkeypatch.setattr(nn.conv_ops, "BACKWARD_PATH", "fourier")
    m = on(xp, small(cls))
    x = rand(xp, rng, 3, 2, 2, 5, 5)
    assert_gradients(m, x)
    m.backward(x, m.forward(x))
    assert m._memo is None


def test_jacobian_with_stride(xp, rng):
    m = on(xp, small(nn.ConvLSTM, stride=2))
    x = rand(xp, rng, 3, 2, 2, 5, 5)
    assert m.forward(x).shape == (3, 2, 3, 3, 3)
    assert_gradients(m, x)


# ------------------------------------------------------------------ forward
def conv_ref(x, w, b, stride, pad):
    B, C, H, W = x.shape
    k = w.shape[2]
    Ho, Wo = out_size(H, k, stride, pad), out_size(W, k, stride, pad)
    xpad = numpy.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y = numpy.zeros((B, w.shape[0], Ho, Wo))
    for b_ in range(B):
        for f in range(w.shape[0]):
            for p in range(Ho):
                for q in range(Wo):
                    y[b_, f, p, q] = (xpad[b_, :, p * stride:p * stride + k, q * stride:q * stride + k]
                                      * w[f]).sum()
    return y if b is None else y + b[None, :, None, None]


def sigmoid(a):
    return 1 / (1 + numpy.exp(-a))


def convlstm_ref(m, xs, h, c):
    """Step-by-step NumPy ConvLSTM (UntiedConvLSTM's first step when it starts fresh)."""
    W, b, Wh = (host(a) for a in (m.weight, m.bias, m.weightHidden))
    pc, pm, s = m.kc // 2, m.km // 2, m.stride
    outs = []
    for t, x in enumerate(xs):
        if t == 0 and h is None and c is None and isinstance(m, nn.UntiedConvLSTM):
            ai, ag, ao = numpy.split(conv_ref(x, host(m.weightFirst), host(m.biasFirst), s, pc), 3, axis=1)
            c = sigmoid(ai) * numpy.tanh(ag)
            h = sigmoid(ao) * numpy.tanh(c)
        else:
            a = conv_ref(x, W, b, s, pc) + (0 if h is None else conv_ref(h, Wh, None, 1, pm))
            ai, af, ag, ao = numpy.split(a, 4, axis=1)
            c = sigmoid(ai) * numpy.tanh(ag) + (0 if c is None else sigmoid(af) * c)
            h = sigmoid(ao) * numpy.tanh(c)
        outs.append(h)
    return numpy.stack(outs)


@pytest.mark.parametrize("cls", CONV_CLASSES)
@pytest.mark.parametrize("stride", [1, 2])
def test_forward_matches_numpy_reference(xp, rng, cls, stride):
    m = on(xp, cls(2, 3, 5, 3, 5, stride=stride))
    x = rand(xp, rng, 4, 2, 2, 6, 5)
    ref = convlstm_ref(m, host(x), None, None)
    numpy.testing.assert_allclose(host(m.forward(x)), ref, rtol=1e-10, atol=1e-12)
    m.h0, m.c0 = xp.asarray(ref[-1]), xp.asarray(ref[-2])
    numpy.testing.assert_allclose(host(m.forward(x)), convlstm_ref(m, host(x), ref[-1], ref[-2]),
                                  rtol=1e-10, atol=1e-12)


def test_float32_forward_is_float32_and_close(rng):
    m = nn.ConvLSTM(2, 3, 5, 3, 3)
    x = rng.uniform(-1, 1, (3, 2, 2, 5, 5)).astype(numpy.float32)
    y = m.forward(x)
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(y, convlstm_ref(m, x.astype(numpy.float64), None, None), atol=1e-5)


# ------------------------------------------------------------ sequence forms
def test_list_and_stacked_forms_give_the_same_numbers(xp, rng):
    m = on(xp, small(nn.UntiedConvLSTM))
    x, go = rand(xp, rng, 3, 2, 2, 4, 4), rand(xp, rng, 3, 2, 3, 4, 4)
    y = m.forward(x).copy()
    gi = m.backward(x, go).copy()
    grads = [g.copy() for g in m.parameters()[1]]
    m.zeroGradParameters()
    ys = m.forward(list(x))
    gis = m.backward(list(x), list(go))
    assert isinstance(ys, list) and len(ys) == 3 and isinstance(gis, list)
    numpy.testing.assert_array_equal(host(xp.stack(ys)), host(y))
    numpy.testing.assert_allclose(host(xp.stack(gis)), host(gi), rtol=1e-12)
    for g, g0 in zip(m.parameters()[1], grads):
        numpy.testing.assert_allclose(host(g), host(g0), rtol=1e-12)
    # unbatched steps come as a list; stacked, (T, C, H, W) would read as one batch: an error
    yu = xp.stack(m.forward(list(x[:, 0])))
    assert yu.shape == (3, 3, 4, 4)
    numpy.testing.assert_allclose(host(yu), host(m.forward(x[:, :1])[:, 0]), rtol=1e-12)
    with pytest.raises(ValueError, match="needs mode='step'"):
        m.forward(x[:, 0])


def test_backward_is_repeatable_accumulates_with_scale_and_splits(rng):
    m = small(nn.ConvLSTM).double()
    x, go = rng.standard_normal((3, 2, 2, 4, 4)), rng.standard_normal((3, 2, 3, 4, 4))
    m.forward(x)
    m.zeroGradParameters()
    gi = m.backward(x, go).copy()
    once = [g.copy() for g in m.parameters()[1]]
    numpy.testing.assert_array_equal(m.backward(x, go, scale=0.5), gi)
    for g, g1 in zip(m.parameters()[1], once):
        numpy.testing.assert_allclose(g, 1.5 * g1, rtol=1e-12)
    m.zeroGradParameters()
    numpy.testing.assert_array_equal(m.updateGradInput(x, go), gi)
    assert not any(g.any() for g in m.parameters()[1])
    m.accGradParameters(x, go, 2.0)
    for g, g1 in zip(m.parameters()[1], once):
        numpy.testing.assert_allclose(g, 2 * g1, rtol=1e-12)


# ------------------------------------------------------------ remember/forget
def test_remember_carries_the_state_and_neither_forgets(rng):
    x = rng.standard_normal((5, 2, 2, 4, 4))
    for cls in CONV_CLASSES:
        m = small(cls).double()
        whole = m.clone().forward(x)
        first = m.forward(x[:2]).copy()
        numpy.testing.assert_array_equal(m.forward(x[:2]), first)  # 'neither': forgotten
        m.remember("both")
        m.forward(x[:2])
        numpy.testing.assert_allclose(m.forward(x[2:]), whole[2:], rtol=1e-12)
        assert not numpy.allclose(m.forward(x[2:]), whole[2:])  # it goes on from the last state
        m.forget()
        numpy.testing.assert_array_equal(m.forward(x[:2]), first)


def test_remember_modes_follow_training_and_evaluation(rng):
    x = rng.standard_normal((2, 1, 2, 4, 4))
    m = small(nn.ConvLSTM).double().remember("train")
    m.forward(x)
    assert m.lastState is not None
    m.evaluate()
    fresh = m.forward(x).copy()
    assert m.lastState is None  # 'train' does not remember in evaluation
    m.remember("eval")
    m.forward(x)
    assert not numpy.allclose(m.forward(x), fresh)
    m.training()
    numpy.testing.assert_array_equal(m.remember("both").forward(x), fresh)  # state of the other mode dropped
    m.remember("neither")
    m.forward(x)
    assert m.lastState is None


def test_remembered_state_takes_precedence_over_h0_and_writes_no_gradient(rng):
    m = small(nn.ConvLSTM).double().remember("both")
    m.h0 = rng.standard_normal((1, 3, 4, 4))
    x = rng.standard_normal((2, 1, 2, 4, 4))
    m.forward(x)
    m.backward(x, numpy.ones((2, 1, 3, 4, 4)))
    assert m.gradH0.any()
    m.gradH0[...] = 0
    m.forward(x)
    m.backward(x, numpy.ones((2, 1, 3, 4, 4)))
    assert not m.gradH0.any()
    m.forget()
    with pytest.raises(ValueError, match="h0 must have the state's shape"):
        m.forward(rng.standard_normal((2, 2, 2, 4, 4)))


# ------------------------------------------------------------ caches, modes
def test_cache_keeps_no_im2col_sized_array_and_eval_keeps_none(rng):
    m = nn.ConvLSTM(4, 8, 5, 5, 5)
    x = rng.standard_normal((3, 2, 4, 6, 6)).astype(numpy.float32)
    y = m.forward(x).copy()
    cached = [a for v in m._cache.values() for e in (v if isinstance(v, list) else [v])
              for a in (e if isinstance(e, tuple) else (e,)) if hasattr(a, "shape")]
    # per step: the four gates, c_t and tanh(c_t); plus the input and the output h
    assert sorted(a.shape for a in cached) == sorted(
        [(2, 8, 6, 6)] * (3 * 4 + 6) + [(3, 2, 4, 6, 6), (3, 2, 8, 6, 6)])
    smallest_im2col = 2 * (4 * 25) * 36  # one step's input im2col: B x (C kc kc) x (H W)
    assert max(a.size for a in cached) < smallest_im2col
    m.evaluate()
    numpy.testing.assert_allclose(m.forward(x), y, rtol=1e-6)
    assert m._cache is None
    with pytest.raises(RuntimeError, match="evaluation mode keeps no per-step caches"):
        m.backward(x, y)
    assert m.training().clearState()._cache is None


# --------------------------------------------------------------- parameters
def test_parameter_counts_order_and_init():
    def count(m):
        return sum(p.size for p in m.parameters()[0])
    assert count(nn.ConvLSTM(16, 64, 10, 7, 7)) == 1003776
    assert count(nn.ConvLSTM(64, 16, 10, 7, 7)) == 250944
    m = nn.UntiedConvLSTM(2, 3, 5, 3, 5)
    shapes = [p.shape for p in m.parameters()[0]]
    assert shapes == [(12, 2, 3, 3), (12,), (12, 3, 5, 5), (9, 2, 3, 3), (9,)]
    assert all(abs(p).max() <= 0.08 for p in (m.weight, m.weightHidden, m.weightFirst))
    assert (m.bias == numpy.repeat([0, 1, 0, 0], 3)).all() and not m.biasFirst.any()


def test_untied_zero_grad_parameters_zeroes_the_first_step_gradients(rng):
    m = small(nn.UntiedConvLSTM).double()
    x = rng.standard_normal((2, 2, 2, 4, 4))
    m.forward(x)
    m.backward(x, numpy.ones((2, 2, 3, 4, 4)))
    assert m.gradWeightFirst.any() and m.gradBiasFirst.any()
    m.zeroGradParameters()
    assert not any(g.any() for g in m.parameters()[1])


def test_type_conversion_and_repr():
    m = nn.ConvLSTM(2, 3, 5, 3, 3, stride=2)
    m.h0 = numpy.zeros((1, 3, 2, 2), dtype=numpy.float32)
    m.double()
    assert m.weightHidden.dtype == m.h0.dtype == m.gradH0.dtype == numpy.float64
    assert repr(m) == "nn.ConvLSTM(2 -> 3, kc=3, km=3, stride=2)"


# ------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors(rng):
    m = small(nn.ConvLSTM)
    x = rng.standard_normal((3, 2, 2, 4, 4)).astype(numpy.float32)
    with pytest.raises(ValueError, match=r"nn.ConvLSTM: the steps' channel count C \(inputSize\) must be 2"):
        m.forward(rng.standard_normal((3, 2, 5, 4, 4)).astype(numpy.float32))
    with pytest.raises(ValueError, match=r"must be a stacked sequence \(T, B, C, H, W\)"):
        m.forward(x[0, 0, 0])
    with pytest.raises(ValueError, match="step 1 has"):
        m.forward([x[0], x[1, :1]])
    with pytest.raises(ValueError, match="at least 1"):
        m.forward([])
    with pytest.raises(ValueError, match="empty sequence"):
        m.forward(x[:0])
    with pytest.raises(TypeError, match="dtype float64 but the parameters are float32"):
        m.forward(x.astype(numpy.float64))
    with pytest.raises(RuntimeError, match="backward needs a forward"):
        small(nn.ConvLSTM).backward(x, x)
    y = m.forward(x)
    with pytest.raises(ValueError, match="gradOutput of backward has 2 steps but the forward sequence had 3"):
        m.backward(x, y[:2])
    with pytest.raises(ValueError, match="input of backward has 2 steps"):
        m.backward(x[:2], y)
    with pytest.raises(ValueError, match="gradOutput"):
        m.backward(x, y[:, :1])
    with pytest.raises(TypeError, match="gradOutput has dtype float64"):
        m.backward(x, y.astype(numpy.float64))
    m.h0 = numpy.zeros((2, 3, 5, 5), dtype=numpy.float32)
    with pytest.raises(ValueError, match=r"h0 must have the state's shape \(2, 3, 4, 4\)"):
        m.forward(x)
    with pytest.raises(ValueError, match="km must be odd"):
        nn.ConvLSTM(2, 3, 5, 3, 4)
    with pytest.raises(ValueError, match="mode must be one of"):
        m.remember("always")
    m.h0 = None
    m.remember("both").forward(x)
    with pytest.raises(ValueError, match="remembered state has shape"):
        m.forward(x[:, :1])
