"""torch/optim's adagrad, adadelta, nag, asgd, lbfgs, cg and sgd's per-parameter vectors, on a
convex quadratic, against PyTorch where it has the same algorithm and NumPy loops otherwise."""
import numpy
import pytest

from nnlite import optim
from tests.helpers import host

Q = numpy.array([[3.0, 0.5, 0.0, 0.2], [0.5, 2.0, 0.3, 0.0], [0.0, 0.3, 1.0, 0.1], [0.2, 0.0, 0.1, 0.5]])
C = numpy.array([1.0, -2.0, 0.5, 0.25])  # f(x) = 0.5 x^T Q x - c^T x, minimum at Q^-1 c


def feval_on(xp):
    def feval(x):
        q, c = xp.asarray(Q), xp.asarray(C)
        g = q @ x - c
        return float(0.5 * x @ q @ x - c @ x), g
    return feval


def x0():
    return numpy.array([1.0, -1.0, 2.0, 0.5])


def run(xp, method, config, steps):
    x = xp.asarray(x0())
    state = {}
    extra = None
    for _ in range(steps):
        out = method(feval_on(xp), x, config, state)
        assert out[0] is x
        extra = out
    return host(x), state, extra


def torch_run(cls, steps, closure_calls=False, **kw):
    torch = pytest.importorskip("torch")
    x = torch.tensor(x0(), requires_grad=True)
    opt = cls([x], **kw)
    q, c = torch.tensor(Q), torch.tensor(C)

    def closure():
        opt.zero_grad()
        f = 0.5 * x @ q @ x - c @ x
        f.backward()
        return f

    for _ in range(steps):
        opt.step(closure)
    return x.detach().numpy()


def test_adagrad_matches_pytorch(xp):
    got, state, _ = run(xp, optim.adagrad, {"learningRate": 0.1, "learningRateDecay": 0.01,
                                            "weightDecay": 0.05}, 6)
    torch = pytest.importorskip("torch")
    want = torch_run(torch.optim.Adagrad, 6, lr=0.1, lr_decay=0.01, weight_decay=0.05, eps=1e-10)
    numpy.testing.assert_allclose(got, want, rtol=1e-10)
    assert state["evalCounter"] == 6 and state["paramVariance"].shape == (4,)


def test_adadelta_matches_pytorch(xp):
    got, state, _ = run(xp, optim.adadelta, {"rho": 0.8, "eps": 1e-4, "weightDecay": 0.1}, 6)
    torch = pytest.importorskip("torch")
    want = torch_run(torch.optim.Adadelta, 6, lr=1.0, rho=0.8, eps=1e-4, weight_decay=0.1)
    numpy.testing.assert_allclose(got, want, rtol=1e-10)
    assert set(state) >= {"paramVariance", "accDelta"}


def test_asgd_matches_pytorch_and_returns_the_average(xp):
    cfg = {"eta0": 0.1, "lambda": 0.01, "alpha": 0.75, "t0": 2}
    got, state, out = run(xp, optim.asgd, cfg, 6)
    torch = pytest.importorskip("torch")
    want = torch_run(torch.optim.ASGD, 6, lr=0.1, lambd=0.01, alpha=0.75, t0=2)
    numpy.testing.assert_allclose(got, want, rtol=1e-7)  # PyTorch rounds eta differently
    # the average: a NumPy loop of Torch's asgd.lua
    x, ax, eta, mu = x0(), numpy.zeros(4), 0.1, 1
    for t in range(1, 7):
        x = (1 - 0.01 * eta) * x - eta * (Q @ x - C)
        ax = ax + mu * (x - ax) if mu != 1 else x.copy()
        eta, mu = 0.1 / (1 + 0.01 * 0.1 * t) ** 0.75, 1 / max(1, t - 2)
    numpy.testing.assert_allclose(host(out[2]), ax, rtol=1e-10)
    numpy.testing.assert_allclose(got, x, rtol=1e-10)


def test_nag_matches_a_numpy_loop_of_nag_lua(xp):
    cfg = {"learningRate": 0.05, "momentum": 0.8, "learningRateDecay": 0.1, "weightDecay": 0.01,
           "learningRates": xp.asarray([1.0, 0.5, 2.0, 1.0])}
    got, state, _ = run(xp, optim.nag, cfg, 5)
    x, v, lrs = x0(), None, numpy.array([1.0, 0.5, 2.0, 1.0])
    for n in range(5):
        if v is not None:
            x = x + 0.8 * v
        g = lrs * (Q @ x - C + 0.01 * x)
        clr = 0.05 / (1 + n * 0.1)
        v = (0 if v is None else 0.8 * v) - clr * g
        x = x - clr * g
    numpy.testing.assert_allclose(got, x, rtol=1e-12)
    with pytest.raises(ValueError, match="momentum must be positive"):
        optim.nag(feval_on(numpy), x0(), {"momentum": 0})


def test_sgd_per_parameter_learning_rates_and_weight_decays(xp):
    lrs, wds = numpy.array([1.0, 0.0, 2.0, 0.5]), numpy.array([0.1, 0.2, 0.0, 0.3])
    cfg = {"learningRate": 0.1, "momentum": 0.5, "learningRates": xp.asarray(lrs),
           "weightDecays": xp.asarray(wds)}
    got, _, _ = run(xp, optim.sgd, cfg, 4)
    x, buf = x0(), None
    for _ in range(4):
        g = Q @ x - C + wds * x
        buf = g.copy() if buf is None else 0.5 * buf + 0.5 * g
        x = x - 0.1 * lrs * buf
    numpy.testing.assert_allclose(got, x, rtol=1e-12)
    assert got[1] == x0()[1]  # a zero learning rate freezes its parameter
    # weightDecays is Torch's fallback: a scalar weightDecay takes precedence
    both, _, _ = run(xp, optim.sgd, {"learningRate": 0.1, "weightDecay": 0.2, "weightDecays": xp.asarray(wds)}, 1)
    numpy.testing.assert_allclose(both, x0() - 0.1 * (Q @ x0() - C + 0.2 * x0()), rtol=1e-12)
    with pytest.raises(ValueError, match=r"config\['learningRates'\] must have the shape of x"):
        optim.sgd(feval_on(xp), xp.asarray(x0()), {"learningRates": xp.ones(3)})


def test_lbfgs_matches_pytorch_and_minimises(xp):
    cfg = {"maxIter": 6, "learningRate": 0.5, "tolFun": 1e-30, "tolX": 1e-30}
    got, state, out = run(xp, optim.lbfgs, cfg, 2)
    torch = pytest.importorskip("torch")
    want = torch_run(torch.optim.LBFGS, 2, lr=0.5, max_iter=6, tolerance_grad=1e-30,
                     tolerance_change=1e-30)
    numpy.testing.assert_allclose(got, want, rtol=1e-9)
    assert state["nIter"] == 12 and len(out[1]) == 6  # f before, then after steps 1..5
    x, f_hist, evals = optim.lbfgs(feval_on(xp), xp.asarray(x0()), {"maxIter": 50, "tolFun": 1e-12,
                                                                      "tolX": 1e-30})
    numpy.testing.assert_allclose(host(x), numpy.linalg.solve(Q, C), atol=1e-8)
    assert f_hist[-1] < f_hist[0] and evals <= 63


def test_cg_minimises_the_quadratic(xp):
    x, f_hist, evals = optim.cg(feval_on(xp), xp.asarray(x0()), {"maxIter": 40})
    numpy.testing.assert_allclose(host(x), numpy.linalg.solve(Q, C), atol=1e-6)
    assert len(f_hist) > 2 and all(b <= a for a, b in zip(f_hist, f_hist[1:])) and evals <= 50
