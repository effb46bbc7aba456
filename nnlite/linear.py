"""Fully connected layer."""
from . import init
from .backend import new_parameter
from .checks import check_array, check_matches_params, check_shape, check_size
from .module import Module


class Linear(Module):
    """``Linear(inputSize, outputSize)``: ``y = x W^T + b``.

    Shapes: x (inputSize,) or (B, inputSize); W (outputSize, inputSize); b (outputSize,).

    Gradients, for a loss L and ``gy = dL/dy``:

    * ``dL/dx = gy W``                       (each output j sends ``W[j, :] * gy_j`` back)
    * ``dL/dW = gy^T x``                     (summed over the batch)
    * ``dL/db = sum_batch gy``

    Init: Torch's, ``U(+-1/sqrt(inputSize))`` for W and b. ``noBias()`` removes b.
    """

    def __init__(self, inputSize, outputSize, bias=True):
        super().__init__()
        self.inputSize, self.outputSize = int(inputSize), int(outputSize)
        self.weight = new_parameter(self.outputSize, self.inputSize)
        self.gradWeight = new_parameter(self.outputSize, self.inputSize)
        self.bias = new_parameter(self.outputSize) if bias else None
        self.gradBias = new_parameter(self.outputSize) if bias else None
        self.reset()

    def reset(self, stdv=None):
        """Torch's reset: U(+-1/sqrt(inputSize)), or U(+-stdv sqrt(3)) given ``stdv``."""
        init.reset_(stdv, 1.0 / self.inputSize ** 0.5, self.weight, self.bias)
        return self

    def noBias(self):
        self.bias = self.gradBias = None
        return self

    def _check(self, input):
        check_array(self, input, (1, 2), layout=f"(inputSize,) or (B, inputSize) with inputSize={self.inputSize}")
        check_size(self, input.shape[-1], self.inputSize, "the input's last dimension (inputSize)")
        check_matches_params(self, input, self.weight)

    def updateOutput(self, input):
        self._check(input)
        self.output = input @ self.weight.T
        if self.bias is not None:
            self.output += self.bias
        return self.output

    def _check_grad(self, input, gradOutput):
        self._check(input)
        check_shape(self, gradOutput, input.shape[:-1] + (self.outputSize,))
        check_matches_params(self, gradOutput, self.weight, "gradOutput")

    def updateGradInput(self, input, gradOutput):
        self._check_grad(input, gradOutput)
        self.gradInput = gradOutput @ self.weight
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self._check_grad(input, gradOutput)
        x2 = input.reshape(-1, self.inputSize)
        g2 = gradOutput.reshape(-1, self.outputSize)
        self.gradWeight += scale * (g2.T @ x2)
        if self.bias is not None:
            self.gradBias += scale * g2.sum(axis=0)

    def extra_repr(self):
        return f"({self.inputSize} -> {self.outputSize}{'' if self.bias is not None else ' without bias'})"
