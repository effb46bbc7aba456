"""SoftMax, LogSoftMax and SpatialSoftMax over the channel axis, Torch's layout rule:
axis 0 of a (C,) or (C, H, W) input, axis 1 of a (B, C) or (B, C, H, W) input (so a 3-D
input is one image, not a batch of vectors). Every pixel gets its own distribution over C.
"""
from .backend import get_xp
from .checks import check_array, check_shape
from .module import Module


def log_softmax(x, axis):
    """``x - logsumexp(x, axis)``, as ``x - m - log sum exp(x - m)`` with ``m = max x`` (no overflow)."""
    xp = get_xp(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class _ChannelSoftMax(Module):
    parameter_names = ()
    _ndims, _layout = (1, 2, 3, 4), "(C,), (B, C), (C, H, W) or (B, C, H, W)"

    def _axis(self, input):
        check_array(self, input, self._ndims, layout=self._layout)
        if input.shape[0 if input.ndim in (1, 3) else 1] == 0:
            raise ValueError(f"{self.typename()}: input of shape {tuple(input.shape)} has no "
                             f"channel to normalise over")
        return 0 if input.ndim in (1, 3) else 1

    def _check_grad(self, input, gradOutput):
        axis = self._axis(input)
        check_shape(self, gradOutput, input.shape)
        # backward reads the stored output: a stale one of another shape would broadcast
        self._check_forward_seen(None if self.output is None else self.output.shape, input)
        return axis


class SoftMax(_ChannelSoftMax):
    """``y_c = exp(x_c) / sum_k exp(x_k)`` over the channel axis (see the module docstring).

    Since ``dy_c/dx_k = y_c ([c = k] - y_k)``,
    ``dL/dx_k = y_k (gy_k - sum_c gy_c y_c)`` (uses the stored output).
    """

    def updateOutput(self, input):
        self.output = get_xp(input).exp(log_softmax(input, self._axis(input)))
        return self.output

    def updateGradInput(self, input, gradOutput):
        axis = self._check_grad(input, gradOutput)
        y = self.output
        self.gradInput = y * (gradOutput - (gradOutput * y).sum(axis=axis, keepdims=True))
        return self.gradInput


class LogSoftMax(_ChannelSoftMax):
    """``y_c = x_c - log sum_k exp(x_k)`` over the channel axis (see the module docstring).

    Since ``dy_c/dx_k = [c = k] - softmax(x)_k``,
    ``dL/dx_k = gy_k - exp(y_k) sum_c gy_c`` (uses the stored output).
    """

    def updateOutput(self, input):
        self.output = log_softmax(input, self._axis(input))
        return self.output

    def updateGradInput(self, input, gradOutput):
        axis = self._check_grad(input, gradOutput)
        xp = get_xp(gradOutput)
        self.gradInput = gradOutput - xp.exp(self.output) * gradOutput.sum(axis=axis, keepdims=True)
        return self.gradInput


class SpatialSoftMax(SoftMax):
    """``SoftMax`` over the channels of each pixel of a (C, H, W) or (B, C, H, W) input."""
    _ndims, _layout = (3, 4), "(C, H, W) or (B, C, H, W)"
