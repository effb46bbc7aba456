"""nnlite.optim: Torch's closure optimisers against hand-written references, clipping, schedule."""
import numpy
import pytest

import nnlite as nn
from nnlite import optim
from tests.helpers import host

A = numpy.array([0.5, 2.0, -1.0, 3.0, 0.1])  # f(x) = 0.5 sum(A x^2) + sum(x): gradient A x + 1


class Quadratic:
    """A closure that counts its calls and returns (f(x), grad) on x's device."""

    def __init__(self, xp):
        self.xp, self.calls = xp, 0

    def __call__(self, x):
        self.calls += 1
        a = self.xp.asarray(A)
        return float((0.5 * a * x * x + x).sum()), a * x + 1


def grad_ref(x):
    return A * x + 1


def x0():
    return numpy.array([1.0, -2.0, 0.5, 0.25, -1.5])


def run(xp, method, config, state=None, steps=3):
    x = xp.asarray(x0())
    feval = Quadratic(xp)
    for _ in range(steps):
        out, fx = method(feval, x, config, state)
        assert out is x and isinstance(fx, list) and len(fx) == 1
    assert feval.calls == steps
    return host(x)


def test_rmsprop_matches_reference_for_three_steps(xp):
    config = {"learningRate": 0.05, "alpha": 0.9, "epsilon": 1e-6, "weightDecay": 0.1}
    got = run(xp, optim.rmsprop, config)
    x, m = x0(), numpy.zeros(5)
    for _ in range(3):
        g = grad_ref(x) + 0.1 * x
        m = 0.9 * m + 0.1 * g * g
        x = x - 0.05 * g / (numpy.sqrt(m) + 1e-6)
    numpy.testing.assert_allclose(got, x, rtol=1e-12)
    numpy.testing.assert_allclose(host(config["m"]), m, rtol=1e-12)  # config doubled as state


def test_rmsprop_defaults_and_separate_state(xp):
    config, state = {}, {}
    got = run(xp, optim.rmsprop, config, state, steps=1)
    g = grad_ref(x0())
    m = 0.01 * g * g  # alpha 0.99, m starts at 0
    numpy.testing.assert_allclose(got, x0() - 1e-2 * g / (numpy.sqrt(m) + 1e-8), rtol=1e-12)
    assert config == {} and set(state) == {"m"}


def test_rmsprop_keeps_the_callers_gradient(xp):
    g = xp.ones(5)
    optim.rmsprop(lambda x: (0.0, g), xp.asarray(x0()), {"weightDecay": 0.5})
    assert (host(g) == 1).all()


def test_sgd_matches_reference_with_momentum_and_decays(xp):
    config = {"learningRate": 0.1, "learningRateDecay": 0.5, "weightDecay": 0.01,
              "momentum": 0.9, "dampening": 0.2}
    got = run(xp, optim.sgd, config)
    x, buf = x0(), None
    for n in range(3):
        g = grad_ref(x) + 0.01 * x
        buf = g.copy() if buf is None else 0.9 * buf + 0.8 * g
        x = x - 0.1 / (1 + n * 0.5) * buf
    numpy.testing.assert_allclose(got, x, rtol=1e-12)
    assert config["evalCounter"] == 3


def test_sgd_nesterov_and_plain(xp):
    got = run(xp, optim.sgd, {"learningRate": 0.1, "momentum": 0.5, "dampening": 0, "nesterov": True})
    x, buf = x0(), None
    for _ in range(3):
        g = grad_ref(x)
        buf = g.copy() if buf is None else 0.5 * buf + g
        x = x - 0.1 * (g + 0.5 * buf)
    numpy.testing.assert_allclose(got, x, rtol=1e-12)
    plain = run(xp, optim.sgd, {}, steps=1)  # Torch's default learning rate 1e-3
    numpy.testing.assert_allclose(plain, x0() - 1e-3 * grad_ref(x0()), rtol=1e-12)


def test_sgd_nesterov_needs_zero_dampening():
    # Torch's default dampening is the momentum, which Nesterov refuses
    with pytest.raises(ValueError, match="Nesterov"):
        optim.sgd(Quadratic(numpy), x0(), {"momentum": 0.9, "nesterov": True})


def test_adam_matches_reference_for_three_steps(xp):
    config = {"learningRate": 0.01, "learningRateDecay": 0.1, "beta1": 0.8, "beta2": 0.95,
              "epsilon": 1e-7, "weightDecay": 0.05}
    got = run(xp, optim.adam, config)
    x, m, v = x0(), numpy.zeros(5), numpy.zeros(5)
    for t in range(1, 4):
        g = grad_ref(x) + 0.05 * x
        m = 0.8 * m + 0.2 * g
        v = 0.95 * v + 0.05 * g * g
        lr = 0.01 / (1 + (t - 1) * 0.1)
        # Torch folds the bias corrections into the step size (Kingma & Ba's section 2 form)
        x = x - lr * numpy.sqrt(1 - 0.95 ** t) / (1 - 0.8 ** t) * m / (numpy.sqrt(v) + 1e-7)
    numpy.testing.assert_allclose(got, x, rtol=1e-12)
    assert config["t"] == 3


def test_rmsprop_object_persists_state_and_round_trips_its_state_dict(xp, tmp_path):
    opt = optim.RMSprop({"learningRate": 0.05})
    x = xp.asarray(x0())
    for _ in range(2):
        opt.step(Quadratic(xp), x)
    saved_x, saved = x.copy(), opt.state_dict()
    assert saved["state"]["m"] is not opt.state["m"]  # a snapshot
    opt.step(Quadratic(xp), x)
    expected = host(x)

    nn.save(tmp_path / "opt.h5", saved)
    resumed = optim.RMSprop().load_state_dict(nn.load(tmp_path / "opt.h5"))
    assert resumed.config == {"learningRate": 0.05}
    x2 = saved_x
    resumed.step(Quadratic(xp), x2)  # the loaded NumPy state moves to x's device
    numpy.testing.assert_allclose(host(x2), expected, rtol=1e-12)
    assert type(resumed.state["m"]) is type(x2)


def test_state_moves_to_the_dtype_of_x():
    state = {"m": numpy.zeros(5, dtype=numpy.float32)}
    optim.rmsprop(Quadratic(numpy), x0(), {}, state)
    assert state["m"].dtype == numpy.float64


def test_sgd_and_adam_objects():
    for cls, method in ((optim.SGD, optim.sgd), (optim.Adam, optim.adam)):
        x = x0()
        cls({"learningRate": 0.1}).step(Quadratic(numpy), x)
        ref = x0()
        method(Quadratic(numpy), ref, {"learningRate": 0.1})
        numpy.testing.assert_array_equal(x, ref)


def test_unknown_config_key_is_an_error():
    with pytest.raises(ValueError, match="learningrate"):
        optim.RMSprop({"learningrate": 1e-3})


def test_bad_state_dict_is_an_error():
    with pytest.raises(ValueError, match="state_dict"):
        optim.RMSprop().load_state_dict({"m": 1})


def test_gradient_of_the_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match="optim.rmsprop.*shape"):
        optim.rmsprop(lambda x: (0.0, numpy.zeros(3)), x0())


def test_gradient_of_the_wrong_dtype_is_an_error():
    with pytest.raises(TypeError, match="dtype"):
        optim.rmsprop(lambda x: (0.0, numpy.zeros(5, numpy.float32)), x0())


def test_feval_must_return_a_pair():
    with pytest.raises(TypeError, match=r"\(loss, gradient\)"):
        optim.adam(lambda x: 1.0, x0())


def test_x_must_be_an_array():
    with pytest.raises(TypeError, match="x must be a NumPy or CuPy array"):
        optim.sgd(Quadratic(numpy), [1.0, 2.0])


def test_non_numeric_hyper_parameter_is_an_error():
    with pytest.raises(TypeError, match="learningRate"):
        optim.rmsprop(Quadratic(numpy), x0(), {"learningRate": "fast"})


def test_state_of_the_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"state\['m'\]"):
        optim.rmsprop(Quadratic(numpy), x0(), {}, {"m": numpy.zeros(4)})


def test_clip_gradients_clamps_in_place(xp):
    g = xp.asarray(numpy.array([-80.0, -3.0, 0.0, 49.0, 51.0]))
    out = optim.clip_gradients(g, 50)
    assert out is g
    numpy.testing.assert_array_equal(host(g), [-50.0, -3.0, 0.0, 49.0, 50.0])


def test_clip_bound_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        optim.clip_gradients(numpy.zeros(3), 0)


def test_step_decay_follows_the_paper():
    got = [optim.step_decay(1e-4, e) for e in (0, 4, 5, 9, 10, 14)]
    numpy.testing.assert_allclose(got, [1e-4, 1e-4, 0.9e-4, 0.9e-4, 0.81e-4, 0.81e-4])
    assert optim.step_decay(1.0, 6, factor=0.5, every=3) == 0.25


def test_step_decay_rejects_a_negative_epoch():
    with pytest.raises(ValueError, match="epoch"):
        optim.step_decay(1e-4, -1)


@pytest.mark.parametrize("shape", [(3 * nn.backend.ELEMENTWISE_GRAIN + 7,), (7, nn.backend.ELEMENTWISE_GRAIN // 2),
                                   (5,), ()])
def test_rmsprop_split_over_threads_gives_the_one_thread_update(shape):
    """A large x is updated in ranges side by side (``backend.host_parallel``): the same
    numbers, bit for bit, as one thread; a small or 0-d x is one range."""
    rng = numpy.random.default_rng(0)
    x0_, g = rng.standard_normal(shape), rng.standard_normal(shape)
    results = []
    for threads in (1, 3):
        x, config = x0_.copy(), {"learningRate": 0.01}
        with nn.backend.host_threads(threads):
            for _ in range(2):
                optim.rmsprop(lambda _: (0.0, g), x, config)
        results.append((x, config["m"]))
    for a, b in zip(*results):
        numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(results[0][0], x0_)
