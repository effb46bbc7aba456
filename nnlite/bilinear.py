"""Bilinear form of two inputs (Torch's nn.Bilinear)."""
from . import init
from .backend import new_parameter
from .checks import (check_array, check_int, check_matches_params, check_same_kind, check_shape,
                     check_size, check_table)
from .module import Module


class Bilinear(Module):
    """``Bilinear(inputSize1, inputSize2, outputSize, bias=True)``: for the table ``[x1, x2]`` of
    x1 (B, inputSize1) and x2 (B, inputSize2),

        ``y[b, k] = sum_{i, j} x1[b, i] W[k, i, j] x2[b, j] + bias[k]``        (B, outputSize)

    with W (outputSize, inputSize1, inputSize2). As GEMMs: ``Z = x1 W`` (B, outputSize,
    inputSize2), ``y = sum_j Z x2 + bias``. Gradients (``gy = dL/dy``, G[b, k, j] = gy[b, k] x2[b, j]):

    * ``dL/dx1[b, i] = sum_{k, j} G[b, k, j] W[k, i, j]``;
    * ``dL/dx2[b, j] = sum_k gy[b, k] Z[b, k, j]``;
    * ``dL/dW[k, i, j] = sum_b x1[b, i] G[b, k, j]``;  ``dL/dbias[k] = sum_b gy[b, k]``.

    Init: Torch's, W and bias ~ U(+-1/sqrt(inputSize1)).
    """

    def __init__(self, inputSize1, inputSize2, outputSize, bias=True):
        super().__init__()
        self.inputSize1 = check_int(self, inputSize1, "inputSize1")
        self.inputSize2 = check_int(self, inputSize2, "inputSize2")
        self.outputSize = check_int(self, outputSize, "outputSize")
        shape = (self.outputSize, self.inputSize1, self.inputSize2)
        self.weight, self.gradWeight = new_parameter(*shape), new_parameter(*shape)
        self.bias = self.gradBias = None
        if bias:
            self.bias, self.gradBias = new_parameter(self.outputSize), new_parameter(self.outputSize)
        self.reset()

    def reset(self, stdv=None):
        """Torch's reset: U(+-1/sqrt(inputSize1)), or U(+-stdv sqrt(3)) given ``stdv``."""
        init.reset_(stdv, self.inputSize1 ** -0.5, self.weight, self.bias)
        return self

    def _check(self, input):
        check_table(self, input, 2)
        x1, x2 = input
        for k, (x, n) in enumerate([(x1, self.inputSize1), (x2, self.inputSize2)]):
            check_array(self, x, (2,), what=f"input[{k}]", layout=f"(B, {n})")
            check_size(self, x.shape[1], n, f"input[{k}]'s last dimension (inputSize{k + 1})")
        check_same_kind(self, x1, x2, "input[0]", "input[1]")
        check_size(self, x2.shape[0], x1.shape[0], "input[1]'s batch size (that of input[0])")
        check_matches_params(self, x1, self.weight)
        return x1, x2

    def _z(self, x1):
        """``Z[b, k, j] = sum_i x1[b, i] W[k, i, j]`` (one GEMM)."""
        K, n1, n2 = self.weight.shape
        w = self.weight.transpose(1, 0, 2).reshape(n1, K * n2)
        return (x1 @ w).reshape(-1, K, n2)

    def updateOutput(self, input):
        x1, x2 = self._check(input)
        y = (self._z(x1) * x2[:, None, :]).sum(axis=-1)
        if self.bias is not None:
            y += self.bias
        self.output = y
        return self.output

    def _grad(self, input, gradOutput):
        x1, x2 = self._check(input)
        check_shape(self, gradOutput, (x1.shape[0], self.outputSize))
        return x1, x2, gradOutput[:, :, None] * x2[:, None, :]

    def updateGradInput(self, input, gradOutput):
        x1, x2, G = self._grad(input, gradOutput)
        K, n1, n2 = self.weight.shape
        g1 = G.reshape(-1, K * n2) @ self.weight.transpose(0, 2, 1).reshape(K * n2, n1)
        g2 = (gradOutput[:, :, None] * self._z(x1)).sum(axis=1)
        self.gradInput = [g1, g2]
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        x1, x2, G = self._grad(input, gradOutput)
        K, n1, n2 = self.weight.shape
        gw = (x1.T @ G.reshape(-1, K * n2)).reshape(n1, K, n2).transpose(1, 0, 2)
        self.gradWeight += scale * gw
        if self.bias is not None:
            self.gradBias += scale * gradOutput.sum(axis=0)

    def extra_repr(self):
        bias = "" if self.bias is not None else " without bias"
        return f"({self.inputSize1}, {self.inputSize2} -> {self.outputSize}{bias})"
