"""The Table 1 architectures, and Srivastava et al.'s composite model (``lstm-composite``), in
PyTorch, for timing comparisons only.

PyTorch is an optional benchmark dependency (``pip install -e .[bench]``); nnlite
never imports it. The shapes, layers and loss follow ``models/`` exactly; the
Huber smoothness term is added to the loss (autograd then injects the same
gradient that nnlite's HuberPenalty adds by hand).
"""
import warnings

import torch
import torch.nn.functional as F
from torch import nn


def _conv(n_in, n_out, k, bias=True):
    return nn.Conv2d(n_in, n_out, k, padding=k // 2, bias=bias)


def encoder(n_in=1):
    return nn.Sequential(_conv(n_in, 16, 7), nn.Tanh(), nn.MaxPool2d(2))


def decoder():
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(16, 1, 7), nn.Sigmoid())


class ConvLSTM(nn.Module):
    def __init__(self, n_in, n_out, k=7):
        super().__init__()
        self.n_out = n_out
        self.wx, self.wh = _conv(n_in, 4 * n_out, k), _conv(n_out, 4 * n_out, k, bias=False)

    def forward(self, seq):
        T, B = seq.shape[:2]
        gx = self.wx(seq.flatten(0, 1)).view(T, B, 4 * self.n_out, *seq.shape[3:])
        h = c = None
        out = []
        for t in range(T):
            g = gx[t] if h is None else gx[t] + self.wh(h)
            i, f, gg, o = g.chunk(4, 1)
            i, f, o, gg = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(gg)
            c = i * gg if c is None else f * c + i * gg
            h = o * torch.tanh(c)
            out.append(h)
        return torch.stack(out)


def huber_penalty(flow, weight=1e-2, delta=1e-3):
    p = F.pad(flow, (1, 1, 1, 1))
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    a = torch.sqrt(gx * gx + gy * gy + 1e-12)
    h = torch.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta))
    return weight * h.sum() / flow.numel()


class AEConvLSTMFlow(nn.Module):
    def __init__(self, height=64, width=64):
        super().__init__()
        h, w = height // 2, width // 2
        self.enc, self.memory, self.dec = encoder(), ConvLSTM(16, 64), decoder()
        self.theta = nn.Sequential(_conv(64, 2, 15), _conv(2, 2, 15))
        self.scale = nn.Parameter(torch.tensor([2.0 / h, 2.0 / w]).view(2, 1, 1))
        ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
        self.register_buffer("base", torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1))
        self.penalty = 0.0

    def forward(self, frames):
        T, B = frames.shape[:2]
        x = self.enc(frames.flatten(0, 1))
        m = self.memory(x.view(T, B, *x.shape[1:]))
        flow = self.theta(m.flatten(0, 1)) * self.scale
        self.penalty = huber_penalty(flow)
        grid = self.base + flow.permute(0, 2, 3, 1)
        warped = F.grid_sample(x, grid.flip(-1), mode="bilinear", padding_mode="zeros",
                               align_corners=True)
        return self.dec(warped).view(T, B, *frames.shape[2:])


class AEConvLSTM(nn.Module):
    def __init__(self, height=64, width=64):
        super().__init__()
        self.enc, self.m1, self.m2, self.dec = encoder(), ConvLSTM(16, 64), ConvLSTM(64, 16), decoder()
        self.penalty = 0.0

    def forward(self, frames):
        T, B = frames.shape[:2]
        x = self.enc(frames.flatten(0, 1))
        m = self.m2(self.m1(x.view(T, B, *x.shape[1:])))
        return self.dec(m.flatten(0, 1)).view(T, B, *frames.shape[2:])


class LSTM(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.n_out = n_out
        self.wx, self.wh = nn.Linear(n_in, 4 * n_out), nn.Linear(n_out, 4 * n_out, bias=False)

    def forward(self, seq):
        gx = self.wx(seq)
        h = c = None
        out = []
        for t in range(seq.shape[0]):
            g = gx[t] if h is None else gx[t] + self.wh(h)
            i, f, gg, o = g.chunk(4, -1)
            i, f, o, gg = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(gg)
            c = i * gg if c is None else f * c + i * gg
            h = o * torch.tanh(c)
            out.append(h)
        return torch.stack(out)


class AEfcLSTM(nn.Module):
    def __init__(self, height=64, width=64, hidden=384):
        super().__init__()
        self.n = 16 * (height // 2) * (width // 2)
        self.enc, self.dec = encoder(), decoder()
        self.l1, self.l2 = LSTM(self.n, hidden), LSTM(hidden, hidden)
        self.out = nn.Linear(hidden, self.n)
        self.penalty = 0.0

    def forward(self, frames):
        T, B = frames.shape[:2]
        x = self.enc(frames.flatten(0, 1)).view(T, B, self.n)
        y = self.out(self.l2(self.l1(x))).view(T * B, 16, frames.shape[3] // 2, frames.shape[4] // 2)
        return self.dec(y).view(T, B, *frames.shape[2:])


class AEConv(nn.Module):
    def __init__(self, height=64, width=64, window=10):
        super().__init__()
        self.window = window
        self.body = nn.Sequential(_conv(window, 16, 7), nn.Tanh(), nn.MaxPool2d(2), _conv(16, 64, 7),
                                  nn.Tanh(), _conv(64, 16, 7), nn.Tanh(), decoder())
        self.penalty = 0.0

    def forward(self, frames):
        T, B = frames.shape[:2]
        K = T - self.window + 1
        windows = torch.stack([frames[c:K + c, :, 0] for c in range(self.window)], 2)
        return self.body(windows.flatten(0, 1)).view(K, B, *frames.shape[2:])


MODELS = {"ae-conv": AEConv, "ae-fclstm": AEfcLSTM, "ae-convlstm": AEConvLSTM,
          "ae-convlstm-flow": AEConvLSTMFlow}


def make_step(name, device, lr=1e-4, clip=50.0):
    """A PyTorch training step equal to nnlite's: forward, BCE (+ Huber), backward, clip, RMSprop."""
    model = MODELS[name]().to(device)
    first = model.window - 1 if isinstance(model, AEConv) else 0
    opt = torch.optim.RMSprop(model.parameters(), lr=lr, alpha=0.99, eps=1e-8)

    def step(frames):
        opt.zero_grad(set_to_none=False)
        if isinstance(model, LSTMComposite):  # two decoders with their own targets
            loss = model.loss(frames)
        else:
            pred = model(frames[:-1])
            loss = F.binary_cross_entropy(pred, frames[first + 1:]) + model.penalty
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), clip)
        opt.step()
        return loss
    return model, step


class PeepholeLSTM(nn.Module):
    """nnlite's ``nn.LSTM(n_in, n_out, peephole=True)`` from an optional given state (Graves's
    peepholes p_i, p_f on c_{t-1} and p_o on c_t); ``n_in = 0`` is an LSTM with no input."""

    def __init__(self, n_in, n_out):
        super().__init__()
        with warnings.catch_warnings():  # n_in = 0: PyTorch warns that an empty weight has no init
            warnings.simplefilter("ignore", UserWarning)
            self.wx = nn.Linear(n_in, 4 * n_out)
        self.wh = nn.Linear(n_out, 4 * n_out, bias=False)
        self.peep = nn.Parameter(torch.empty(3, n_out).uniform_(-0.08, 0.08))

    def forward(self, seq, state=None):
        gx = self.wx(seq)
        h, c = state if state is not None else (None, None)
        p = self.peep
        out = []
        for t in range(seq.shape[0]):
            g = gx[t] if h is None else gx[t] + self.wh(h)
            i, f, gg, o = g.chunk(4, -1)
            if c is not None:
                i, f = i + p[0] * c, f + p[1] * c
            i, f, gg = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(gg)
            c = i * gg if c is None else f * c + i * gg
            h = torch.sigmoid(o + p[2] * c) * torch.tanh(c)
            out.append(h)
        return torch.stack(out), (h, c)


class LSTMComposite(nn.Module):
    """Srivastava et al.'s composite model as ``models.srivastava.LSTMComposite``: an encoder of
    ``layers`` peephole LSTMs over the flattened first ``n_inputs`` frames, its final (h, c) of
    every layer copied into two unconditioned decoders (no input), a logistic readout each;
    the loss is the BCE of the reversed input plus the BCE of the ``n_future`` next frames.
    Needs ``n_inputs + n_future`` frames (``bench_step.py --seq 19``)."""

    def __init__(self, height=64, width=64, hidden=2048, layers=2, n_inputs=10, n_future=10):
        super().__init__()
        P = height * width
        self.n_inputs, self.n_future = n_inputs, n_future
        self.enc = nn.ModuleList([PeepholeLSTM(P if k == 0 else hidden, hidden) for k in range(layers)])
        self.decs = nn.ModuleList([nn.ModuleList([PeepholeLSTM(0 if k == 0 else hidden, hidden)
                                                  for k in range(layers)]) for _ in range(2)])
        self.outs = nn.ModuleList([nn.Linear(hidden, P) for _ in range(2)])
        self.penalty = 0.0

    def forward(self, frames):
        B, n = frames.shape[1], self.n_inputs
        x, states = frames[:n].flatten(2), []
        for m in self.enc:
            x, s = m(x, None)
            states.append(s)
        preds = []
        for dec, out, steps in zip(self.decs, self.outs, (n, self.n_future)):
            h = frames.new_zeros(steps, B, 0)
            for m, s in zip(dec, states):
                h, _ = m(h, s)
            preds.append(torch.sigmoid(out(h)).view(steps, B, *frames.shape[2:]))
        return preds

    def loss(self, frames):
        n = self.n_inputs
        reconstruction, future = self(frames[:n + self.n_future])
        return (F.binary_cross_entropy(reconstruction, frames[:n].flip(0))
                + F.binary_cross_entropy(future, frames[n:n + self.n_future]))


MODELS["lstm-composite"] = LSTMComposite
