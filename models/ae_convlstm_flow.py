"""AE-ConvLSTM-flow, the paper's model (section 3, Figure 1, Table 1).

At each time step t, with every array stacked over time (T, B, ...)::

    x_t   = enc(Y_t)                      (B, 16, h, w),  h = H/2
    m_t   = ConvLSTM(x_t, m_{t-1})        (B, 64, h, w)   temporal encoder (memory)
    T_t   = Huber(Theta(m_t))             (B, 2, h, w)    flow, (y, x), normalised units
    G_t   = GridGenerator(T_t)            (B, h, w, 2)
    x~_t  = BilinearSampler(x_t, G_t)     (B, 16, h, w)   current features warped
    Y~_t+1 = dec(x~_t)                    (B, 1, H, W)    predicted next frame

1,035,067 parameters. The features x_t feed both the memory and the sampler,
so ``dL/dx_t`` is the sum of the two paths' gradients. HuberPenalty is the
identity forward and injects the smoothness gradient of the flow in backward.

Wiring is written out by hand (a container with two paths that meet at the
sampler): every stage except the memory runs on the T*B frames at once.
"""
import nnlite as nn
from nnlite.checks import check_array
from nnlite.flow import normalise_flow
from nnlite.recurrent import fold_time, unfold_time

from .blocks import OnePassBackward, decoder, encoder, flow_regressor, memory
from .flow_metrics import flow_sums
from .video_predictor import VideoPredictor, per_pixel_bce


class AEConvLSTMFlow(VideoPredictor, OnePassBackward, nn.Container):
    eval_needs = ("flow", "flow_mask")

    def __init__(self, height=64, width=64, rho=9999, huber_weight=1e-2, huber_threshold=1e-3,
                 forget_bias=1.0, flow_zero_1x1=False, flow_clamp=False):
        """The paper's model; three options reproduce the original Torch code (SPEC §8).

        ``forget_bias``: the ConvLSTM's forget-gate bias (1, the paper; 0, the scripts).
        ``flow_zero_1x1``: a zero-initialised 1x1 convolution 2->2 ends the flow
        regressor (+6 parameters; the initial flow is exactly 0, so the first prediction
        is the decoded current features). ``flow_clamp``: ``Clamp(-0.5, 0.5)`` on the
        flow in normalised units. See ``blocks.flow_regressor``.
        """
        h, w = height // 2, width // 2
        self.enc = encoder()
        self.memory = memory(16, 64, rho=rho, forget_bias=forget_bias)
        self.theta = flow_regressor(64, h, w, zero_1x1=flow_zero_1x1, clamp=flow_clamp)
        self.huber = nn.HuberPenalty(2, huber_weight, huber_threshold)
        self.grid = nn.GridGenerator(h, w)
        self.sampler = nn.BilinearSampler()
        self.dec = decoder()
        super().__init__(self.enc, self.memory, self.theta, self.huber, self.grid, self.sampler,
                         self.dec)

    def loss_terms(self):
        """The flow smoothness penalty that HuberPenalty adds in backward (0-d array)."""
        return {} if self.huber.loss is None else {"smoothness": self.huber.loss}

    def flow_pixels(self):
        """The last forward's flow (T*B, 2, h, w), (y, x), in pixels of the flow's resolution.

        The grid is in normalised units where [-1, 1] spans ``size - 1`` pixels, so a
        displacement ``d`` is ``d (size - 1) / 2`` pixels.
        """
        flow = self.theta.output
        h, w = flow.shape[-2:]
        xp = nn.get_xp(flow)
        scale = xp.asarray([(h - 1) / 2, (w - 1) / 2], dtype=flow.dtype).reshape(1, 2, 1, 1)
        return flow * scale

    def evaluate_batch(self, batch):
        """Table 1's frame metrics (``VideoPredictor``) and, when the batch holds the true
        motion (``"flow"``, ``"flow_mask"``: ``MovingMNIST.motion``), the flow's.

        The flow scored is the one that predicts the test frame: step ``n_inputs - 1``, made
        after ``n_inputs`` frames, against the true motion of frame ``n_inputs``. Sums over
        sequences of the per-sequence means (``models.flow_metrics``): ``epe`` and ``ae`` of
        the model's flow (``flow_pixels``), ``zero_epe`` and ``zero_ae`` of a zero flow, and
        ``true_flow_bce`` / ``true_flow_sqerr``: the test frame predicted by the model's own
        encoder, sampler and decoder from the true flow (0 off the mask: the background does
        not move). That is the frame error a perfect flow would give this decoder; it is not
        a floor, since no backward flow has a true source where a digit uncovers background.
        """
        if "flow" not in batch:
            return super().evaluate_batch(batch)
        k = self.n_inputs - 1
        sums = self._true_flow_sums(batch["frames"], batch["flow"][k])  # before the forward below
        sums.update(super().evaluate_batch(batch))
        flow = unfold_time(self.flow_pixels(), self.output.shape[0])[k]
        sums.update(flow_sums(flow, batch["flow"][k], batch["flow_mask"][k]))
        return sums

    def _true_flow_sums(self, frames, truth):
        """BCE and squared error sums of frame ``n_inputs`` predicted with the true flow.

        Runs the encoder, grid, sampler and decoder on one step, overwriting their outputs:
        the caller runs the model's own forward afterwards.
        """
        x = self.enc.forward(frames[self.n_inputs - 1])
        h, w = x.shape[-2:]
        grid = self.grid.forward(normalise_flow(truth.astype(x.dtype, copy=False), h, w))
        pred = self.dec.forward(self.sampler.forward([x, grid]))
        target = frames[self.n_inputs]
        return {"true_flow_bce": per_pixel_bce(pred, target).sum(),
                "true_flow_sqerr": ((pred - target) ** 2).mean(axis=(1, 2, 3)).sum()}

    def picture_rows(self, batch):
        """The frames and prediction, the flow of the last step in pixels, and with the
        batch's true motion the true flow of the same frame (same (h, w, 2) (y, x) layout)."""
        rows = super().picture_rows(batch)
        T = self.output.shape[0]
        flow = nn.to_numpy(unfold_time(self.flow_pixels(), T)[T - 1, 0])  # (2, h, w)
        rows.append(("flow", [flow.transpose(1, 2, 0)]))
        if "flow" in batch:
            rows.append(("true flow", [nn.to_numpy(batch["flow"][T - 1, 0]).transpose(1, 2, 0)]))
        return rows

    def updateOutput(self, input):
        check_array(self, input, (5,), layout="a stacked sequence (T, B, 1, H, W)")
        T = input.shape[0]
        x = self.enc.forward(fold_time(input))
        m = self.memory.forward(unfold_time(x, T))
        flow = self.huber.forward(self.theta.forward(fold_time(m)))
        grid = self.grid.forward(flow)
        y = self.dec.forward(self.sampler.forward([x, grid]))
        self.output = unfold_time(y, T)
        return self.output

    def _backward(self, input, gradOutput, scale, params, gradFlow=None):
        """One backward pass; ``params`` says whether parameter gradients accumulate.

        ``gradFlow`` (T*B, 2, h, w): a gradient at the flow T_t from a model that also
        uses it (SegNet-flow's label propagation), added to the sampler path's."""
        def step(module, x, g):
            return module.backward(x, g, scale) if params else module.updateGradInput(x, g)

        T = input.shape[0]
        x, flow, grid = self.enc.output, self.theta.output, self.grid.output
        g = step(self.dec, self.sampler.output, fold_time(gradOutput))
        g_x, g_grid = step(self.sampler, [x, grid], g)
        g_T = step(self.grid, flow, g_grid)
        g_flow = step(self.huber, flow, g_T if gradFlow is None else g_T + gradFlow)
        m = self.memory.output
        g_m = step(self.theta, fold_time(m), g_flow)
        g_mem_in = step(self.memory, unfold_time(x, T), unfold_time(g_m, T))
        g_x = g_x + fold_time(g_mem_in)
        g_in = step(self.enc, fold_time(input), g_x)
        self.gradInput = g_in.reshape(input.shape)
        return self.gradInput
