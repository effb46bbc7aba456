"""Count the multiply-add work of one training step from a model's forward shapes.

After a forward pass, every convolution, GEMM layer and recurrent memory knows its
output shape; from it and the layer's sizes we count 2 FLOPs per multiply-add.
A training step costs about 3x the forward (backward computes the input gradient
and the weight gradient, each as large as the forward GEMM). Element-wise work
(activations, pooling, sampling) is not counted: the figure measures GEMM
efficiency.
"""
import nnlite as nn


def _prod(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


def forward_flops(model):
    total = 0
    for m in model.modules_tree():
        out = m.output
        if out is None or isinstance(out, list):
            continue
        if isinstance(m, nn.SpatialConvolution):
            k = m.weight[0].size  # nIn * kH * kW
            total += 2 * _prod(out.shape) * k
        elif isinstance(m, nn.ConvLSTM):
            T = out.shape[0]
            per_step = _prod(out.shape[1:]) * 4  # gate pre-activations per step
            total += 2 * T * per_step * m.weight[0].size
            total += 2 * (T - 1) * per_step * m.weightHidden[0].size
        elif isinstance(m, nn.LSTM):
            T = out.shape[0]
            per_step = _prod(out.shape[1:]) * 4
            total += 2 * T * per_step * m.inputSize + 2 * (T - 1) * per_step * m.outputSize
        elif isinstance(m, nn.Linear):
            total += 2 * _prod(out.shape) * m.inputSize
    return total


def step_flops(model):
    """Forward + backward (input and weight gradients) of the last forward's shapes."""
    return 3 * forward_flops(model)
