"""Embeddings: Torch's LookupTable."""
from .backend import get_xp, host_rng, is_array, is_cupy, new_parameter, scatter_add
from .checks import check_int, check_same_device, check_shape
from .module import Module


class LookupTable(Module):
    """``LookupTable(nIndex, nOutput)``: row ``i`` of a weight (nIndex, nOutput) for every index i.

    The input is an integer array of any shape holding **0-based** indices in [0, nIndex)
    (Torch's are 1-based); ``y[..., :] = W[x[...], :]``, of shape ``x.shape + (nOutput,)``.

    * ``dL/dW[i] = sum of gy[...] over the positions where x == i`` (a scatter-add: an index
      may appear many times);
    * the indices are not differentiable; ``gradInput`` is zeros of the input's shape, as in
      Torch, so the module can sit first in a ``Sequential``.

    Init: Torch's, W ~ N(0, 1) (``reset(stdv)`` draws N(0, stdv^2)).

    An index out of range raises ValueError on NumPy. On a GPU that check would stop the device
    every step, so there an index out of range makes the whole output NaN instead (for the loss
    to show); the indices are clipped into range so that nothing reads outside W.
    """
    parameter_names = ("weight",)

    def __init__(self, nIndex, nOutput):
        super().__init__()
        self.nIndex = check_int(self, nIndex, "nIndex")
        self.nOutput = check_int(self, nOutput, "nOutput")
        self.weight = new_parameter(self.nIndex, self.nOutput)
        self.gradWeight = new_parameter(self.nIndex, self.nOutput)
        self.reset()

    def reset(self, stdv=1.0):
        """Torch's reset: W ~ N(0, stdv^2)."""
        w = host_rng().normal(0.0, stdv, size=self.weight.shape)
        self.weight[...] = get_xp(self.weight).asarray(w.astype(self.weight.dtype))
        return self

    def _check(self, input):
        """Checks; returns the indices, clipped into range on a GPU (see the class docstring)."""
        who = self.typename()
        if not is_array(input) or input.dtype.kind not in "iu":
            kind = input.dtype if is_array(input) else type(input).__name__
            raise TypeError(f"{who}: input must be an integer array of 0-based indices, got {kind}")
        check_same_device(self, input, self.weight, "input", "the weight")
        if is_cupy(input):
            return get_xp(input).clip(input, 0, self.nIndex - 1)
        bad = (input < 0) | (input >= self.nIndex)
        if bool(bad.any()):
            raise ValueError(f"{who}: indices must be in [0, {self.nIndex}), got {int(input[bad][0])}")
        return input

    def updateOutput(self, input):
        idx = self._check(input)
        y = self.weight[idx]
        if is_cupy(input):  # an index out of range poisons the output instead of a sync
            xp = get_xp(input)
            bad = ((input < 0) | (input >= self.nIndex)).any()
            y = xp.where(bad, xp.nan, y).astype(y.dtype, copy=False)
        self.output = y
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check(input)
        check_shape(self, gradOutput, input.shape + (self.nOutput,))
        self.gradInput = get_xp(gradOutput).zeros(input.shape, dtype=gradOutput.dtype)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        idx = self._check(input)
        check_shape(self, gradOutput, input.shape + (self.nOutput,))
        scatter_add(self.gradWeight, idx.reshape(-1), scale * gradOutput.reshape(-1, self.nOutput))

    def extra_repr(self):
        return f"({self.nIndex} -> {self.nOutput})"
