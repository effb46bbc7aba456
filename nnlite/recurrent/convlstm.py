"""Convolutional LSTMs: the memory module of Patraucean et al. (2016), equation (1)."""
from .. import init
from ..backend import get_xp, new_parameter
from ..checks import check_int
from ..conv_ops import conv2d, conv2d_backward, out_size
from .base import fold_time, unfold_time
from .cell import AbstractLSTM


def _conv_backward(x, d, weight, gradWeight, gradBias, stride, pad, need_input, scale, memo=None):
    """dL/dx of ``conv2d(x, weight)`` for output gradient ``d`` (when ``need_input``) and,
    unless ``scale`` is None, ``gradWeight``/``gradBias += scale * ...`` (im2col recomputed)."""
    acc = scale is not None
    return conv2d_backward(d, weight, x.shape, x if acc else None, gradWeight, gradBias,
                           scale, need_input, stride, stride, pad, pad, channel_major=True, memo=memo)


class ConvLSTM(AbstractLSTM):
    """``ConvLSTM(inputSize, outputSize, rho, kc, km, stride=1, mode='sequence')``: the paper's
    equation (1) without peepholes, over a sequence of (B, inputSize, H, W) frames (a whole
    sequence per call, or with ``mode='step'`` one frame per call: ``AbstractRecurrent``)::

        A_t = conv_kc(x_t; weight, bias) + conv_km(h_{t-1}; weightHidden)
        i, f, o = sigmoid(a_i, a_f, a_o),  g = tanh(a_g)
        c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)

    The equations, their BPTT and every gradient are derived in ``AbstractLSTM``;
    here ``Wx *`` is the input convolution (kernel kc, stride ``stride``, padding
    kc // 2) and ``Wh *`` the hidden one (kernel km, stride 1, padding km // 2), so
    ``Wh^T *`` is its transposed convolution (col2im of ``W^T dA``) and ``(x)`` the
    convolution weight gradient (``dA`` against the im2col of the map's input).

    Parameters, fused, in this order (``parameters()``):
    ``weight`` (4 out, in, kc, kc), ``bias`` (4 out,), ``weightHidden`` (4 out, out,
    km, km); gate blocks ordered input, forget, cell candidate, output. The hidden
    convolution has no bias. 16 -> 64 with 7x7 kernels: 1,003,776 parameters.
    Init (the paper's memory): weights U(-0.08, 0.08), forget-gate bias 1, other biases 0.

    With ``stride > 1`` the input convolution subsamples and the state ``h``, ``c``
    (and the output) live at its resolution ``floor((H + 2 (kc // 2) - kc) / stride) + 1``.
    ``km`` must be odd so the hidden convolution keeps that size.

    Cost: the input convolution of all T steps is one ``conv2d`` call over T B
    frames (it does not depend on the recurrence), forward and backward; the
    hidden convolution is one call per step, skipped at step 0 when h0 is the
    default zero. Over one sequence's forward, and over its backward's dL/dh calls, the
    hidden convolution's calls share a ``memo`` (``conv_ops.conv2d``), so that on the
    Fourier path the kernel's spectrum (83 MB for the paper's 64 -> 256 map) is made once
    per pass, not once per step; it is dropped at the end of the forward and before the
    backward's weight gradient. Backward recomputes the im2col buffers rather than keeping them.
    The pre-activations and the gate gradients stay in the channel-major layout of the
    convolutions' GEMMs (``conv_ops``, "Layouts"): the gates are elementwise, so no
    step copies them into batch-major order; only the output ``h_t`` is batch-major.

    Memory (measured with tracemalloc, NumPy, float32): forward + backward over 10
    steps of ConvLSTM(16, 64, 10, 7, 7) at batch 16 on 32x32 frames peaks at
    701 MiB above the inputs; the forward alone at 443 MiB. After the forward,
    403 MiB stay: the cache for backward (gates, c_t, tanh(c_t): 240 MiB), the
    output, and the 128 MiB work buffer the convolutions reuse (``conv_ops``: the
    input convolution of all 160 frames runs in chunks of that size). Backward adds
    the gate gradients of all steps (160 MiB, so that the input convolution's
    backward is one pass over all frames instead of ten).
    """
    step_ndim = 3
    step_layout = "(C, H, W)"
    input_what = "channel count C (inputSize)"

    def __init__(self, inputSize, outputSize, rho, kc, km, stride=1, mode="sequence"):
        super().__init__(rho, mode)
        self.inputSize = check_int(self, inputSize, "inputSize")
        self.outputSize = check_int(self, outputSize, "outputSize")
        self.kc = check_int(self, kc, "kc")
        self.km = check_int(self, km, "km")
        self.stride = check_int(self, stride, "stride")
        if self.km % 2 == 0:
            raise ValueError(f"{self.typename()}: km must be odd (the hidden convolution must keep "
                             f"the state's size with padding km // 2), got {km}")
        F, out = 4 * self.outputSize, self.outputSize
        self.weight = new_parameter(F, self.inputSize, self.kc, self.kc)
        self.gradWeight = new_parameter(F, self.inputSize, self.kc, self.kc)
        self.bias = new_parameter(F)
        self.gradBias = new_parameter(F)
        self.weightHidden = new_parameter(F, out, self.km, self.km)
        self.gradWeightHidden = new_parameter(F, out, self.km, self.km)
        init.lstm_([self.weight, self.weightHidden], self.bias, slice(out, 2 * out))

    def _state_shape(self, x):
        H, W = x.shape[-2:]
        pc = self.kc // 2
        return (x.shape[1], self.outputSize, out_size(H, self.kc, self.stride, pc),
                out_size(W, self.kc, self.stride, pc))

    def _input_conv(self, x4, weight, bias, blocks):
        """Pre-activations (B, blocks, out, Ho, Wo) of the input convolution of frames x4."""
        y = conv2d(x4, weight, bias, self.stride, self.stride, self.kc // 2, self.kc // 2,
                   channel_major=True)
        return y.reshape((y.shape[0], blocks, self.outputSize) + y.shape[2:])

    def _input_preactivation(self, x, fresh):
        y = self._input_conv(fold_time(x), self.weight, self.bias, 4)
        return list(unfold_time(y, x.shape[0]))

    #: the hidden convolution's ``memo`` during a sequence's forward or backward, else None
    _memo = None

    def _with_memo(self, run, *args):
        """``run(*args)`` with a fresh ``_memo``, dropped afterwards whatever happens."""
        self._memo = {}
        try:
            return run(*args)
        finally:
            self._memo = None

    def _forward_sequence(self, x, h, c):
        return self._with_memo(super()._forward_sequence, x, h, c)

    def _bptt(self, gy, need_input, scale):
        return self._with_memo(super()._bptt, gy, need_input, scale)

    def _hidden_preactivation(self, h):
        pm = self.km // 2
        return conv2d(h, self.weightHidden, None, 1, 1, pm, pm, channel_major=True, memo=self._memo)

    @staticmethod
    def _gate_gradients(xp, T, i0):
        """(T, B, 4, out, H, W) as a view of (4, out, T, B, H, W) memory: every dA_t, and all
        T B frames of them, is then already the (4 out, B H W) matrix its convolution's
        backward multiplies (``conv_ops.to_channel_major`` is a view)."""
        B, out = i0.shape[:2]
        return xp.empty((4, out, T, B) + i0.shape[2:], dtype=i0.dtype).transpose(2, 3, 0, 1, 4, 5)

    @staticmethod
    def _fold_gates(dA):
        """(B, n, out, H, W) -> (B, n out, H, W): the layout of the convolution's output."""
        return dA.reshape((dA.shape[0], -1) + dA.shape[3:])

    def _input_backward(self, x, dA, fresh, need_input, scale):
        return self._tied_input_backward(x, dA, need_input, scale)

    def _tied_input_backward(self, x, dA, need_input, scale):
        """The input convolution's backward over all T B frames of ``x`` (T, B, C, H, W) at once."""
        dx = _conv_backward(fold_time(x), self._fold_gates(fold_time(dA)), self.weight,
                            self.gradWeight, self.gradBias, self.stride, self.kc // 2, need_input, scale)
        return dx.reshape(x.shape) if need_input else None

    def _hidden_backward(self, h_prev, dA, need_input, scale):
        if not need_input:  # the weight gradient comes after the last dL/dh: done with the spectrum
            self._memo = None
        return _conv_backward(h_prev, self._fold_gates(dA), self.weightHidden, self.gradWeightHidden,
                              None, 1, self.km // 2, need_input, scale, self._memo)

    def extra_repr(self):
        s = f", stride={self.stride}" if self.stride != 1 else ""
        return f"({self.inputSize} -> {self.outputSize}, kc={self.kc}, km={self.km}{s})"


class UntiedConvLSTM(ConvLSTM):
    """``UntiedConvLSTM(inputSize, outputSize, rho, kc, km, stride=1, mode='sequence')``: a ``ConvLSTM``
    whose first step has its own input-only convolutions (viorik/ConvLSTM).

    When a sequence starts from no state (no remembered state, no ``h0``/``c0``),
    step 0 computes i, g, o from ``x_0`` alone, with no forget gate and no recurrent
    term: ``[a_i, a_g, a_o] = conv_kc(x_0; weightFirst, biasFirst)``, ``c_0 = i g``,
    ``h_0 = o tanh(c_0)``; steps 1.. are the tied ConvLSTM. Backward is
    ``AbstractLSTM``'s with ``da_f = 0`` at step 0 (``c_{-1}`` is absent), and step
    0's ``da_i, da_g, da_o`` go to ``weightFirst``/``biasFirst`` (and ``dx_0``)
    through that convolution. When a sequence continues a state (remembered, or a
    user-set ``h0``/``c0``), every step is tied, as in the original, whose first-step
    model ran only on the module's first step.

    Parameters, in this order: ``weight``, ``bias``, ``weightHidden`` (as ConvLSTM),
    then ``weightFirst`` (3 out, in, kc, kc) and ``biasFirst`` (3 out,), blocks
    ordered input, cell candidate, output; initialised U(-0.08, 0.08) and 0.
    ``zeroGradParameters`` zeroes their gradients like all others (the original
    forgot to: a bug).
    """
    parameter_names = ConvLSTM.parameter_names + ("weightFirst", "biasFirst")

    def __init__(self, inputSize, outputSize, rho, kc, km, stride=1, mode="sequence"):
        super().__init__(inputSize, outputSize, rho, kc, km, stride, mode)
        shape = (3 * self.outputSize, self.inputSize, self.kc, self.kc)
        self.weightFirst = new_parameter(*shape)
        self.gradWeightFirst = new_parameter(*shape)
        self.biasFirst = new_parameter(3 * self.outputSize)
        self.gradBiasFirst = new_parameter(3 * self.outputSize)
        init.lstm_([self.weightFirst], self.biasFirst, slice(0, 0))  # no forget gate: all biases 0

    def _input_preactivation(self, x, fresh):
        if not fresh:
            return super()._input_preactivation(x, fresh)
        rest = super()._input_preactivation(x[1:], False) if x.shape[0] > 1 else []
        p = self._input_conv(x[0], self.weightFirst, self.biasFirst, 3)
        a0 = get_xp(p).empty((p.shape[0], 4) + p.shape[2:], dtype=p.dtype)
        a0[:, 0] = p[:, 0]
        a0[:, 1] = 0  # the forget gate meets no c_{-1}: its value is never used
        a0[:, 2:] = p[:, 1:]
        return [a0] + rest

    def _input_backward(self, x, dA, fresh, need_input, scale):
        if not fresh:
            return self._tied_input_backward(x, dA, need_input, scale)
        xp = get_xp(dA)
        d0 = xp.concatenate([dA[0, :, :1], dA[0, :, 2:]], axis=1)
        dx0 = _conv_backward(x[0], self._fold_gates(d0), self.weightFirst, self.gradWeightFirst,
                             self.gradBiasFirst, self.stride, self.kc // 2, need_input, scale)
        dx = None
        if x.shape[0] > 1:
            dx = self._tied_input_backward(x[1:], dA[1:], need_input, scale)
        if not need_input:
            return None
        return dx0[None] if dx is None else xp.concatenate([dx0[None], dx])
