"""The fully connected LSTM (rnn's ``nn.LSTM``), over whole sequences."""
from .. import init
from ..backend import new_parameter
from ..checks import check_int
from .base import fold_time
from .cell import AbstractLSTM


def _linear_backward(x, d, weight, gradWeight, gradBias, need_input, scale):
    """For ``y = x W^T (+ b)``: ``dL/dx = d W`` (when ``need_input``) and, unless ``scale``
    is None, ``gradWeight += scale d^T x``, ``gradBias += scale sum_batch d``."""
    if scale is not None:
        gradWeight += scale * (d.T @ x)
        if gradBias is not None:
            gradBias += scale * d.sum(axis=0)
    return d @ weight if need_input else None


class LSTM(AbstractLSTM):
    """``LSTM(inputSize, outputSize, peephole=False, rho=9999, mode='sequence')``: a fully
    connected LSTM over a sequence of (B, inputSize) vectors (stacked (T, B, inputSize) or a
    list), or with ``mode='step'`` one (B, inputSize) step per call (``AbstractRecurrent``)::

        A_t = x_t weight^T + bias + h_{t-1} weightHidden^T      (B, 4 out): blocks i, f, g, o
        i = sigmoid(a_i [+ p_i c_{t-1}]),  f = sigmoid(a_f [+ p_f c_{t-1}]),  g = tanh(a_g)
        c_t = f c_{t-1} + i g,  o = sigmoid(a_o [+ p_o c_t]),  h_t = o tanh(c_t)

    BPTT and every gradient are derived in ``AbstractLSTM``; here ``Wx * x = x W^T``,
    its transpose ``dA W`` and its parameter gradient ``dA^T x``.

    Parameters, in this order: ``weight`` (4 out, in), ``bias`` (4 out,),
    ``weightHidden`` (4 out, out) (no hidden bias), and with ``peephole=True``
    rnn's peepholes ``weightPeephole`` (3, out), rows p_i, p_f, p_o (diagonal
    weights: ``p * c`` element-wise). Gate blocks ordered input, forget, cell
    candidate, output. Init (the paper's memory): every weight U(-0.08, 0.08),
    forget-gate bias 1, other biases 0. ``rho`` comes last (keyword) since the
    spec's signature has none; BPTT reaches back at most ``rho`` steps.

    ``inputSize`` may be 0: an LSTM with no input (steps (B, 0)), driven by its initial
    state and biases alone (Srivastava et al.'s unconditioned decoder).
    """
    parameter_names = AbstractLSTM.parameter_names + ("weightPeephole",)
    step_ndim = 1
    step_layout = "(inputSize)"
    input_what = "size (inputSize)"

    def __init__(self, inputSize, outputSize, peephole=False, rho=9999, mode="sequence"):
        super().__init__(rho, mode)
        self.inputSize = check_int(self, inputSize, "inputSize", minimum=0)
        self.outputSize = check_int(self, outputSize, "outputSize")
        F, out = 4 * self.outputSize, self.outputSize
        self.weight = new_parameter(F, self.inputSize)
        self.gradWeight = new_parameter(F, self.inputSize)
        self.bias = new_parameter(F)
        self.gradBias = new_parameter(F)
        self.weightHidden = new_parameter(F, out)
        self.gradWeightHidden = new_parameter(F, out)
        weights = [self.weight, self.weightHidden]
        if peephole:
            self.weightPeephole = new_parameter(3, out)
            self.gradWeightPeephole = new_parameter(3, out)
            weights.append(self.weightPeephole)
        init.lstm_(weights, self.bias, slice(out, 2 * out))

    def _state_shape(self, x):
        return (x.shape[1], self.outputSize)

    def _input_preactivation(self, x, fresh):
        y = fold_time(x) @ self.weight.T
        y += self.bias
        return list(y.reshape(x.shape[:2] + (4, self.outputSize)))

    def _hidden_preactivation(self, h):
        return h @ self.weightHidden.T

    def _input_backward(self, x, dA, fresh, need_input, scale):
        dx = _linear_backward(fold_time(x), dA.reshape(-1, 4 * self.outputSize), self.weight,
                              self.gradWeight, self.gradBias, need_input, scale)
        return dx.reshape(x.shape) if need_input else None

    def _hidden_backward(self, h_prev, dA, need_input, scale):
        return _linear_backward(h_prev, dA.reshape(dA.shape[0], -1), self.weightHidden,
                                self.gradWeightHidden, None, need_input, scale)

    def extra_repr(self):
        peephole = ", peephole" if self.weightPeephole is not None else ""
        return f"({self.inputSize} -> {self.outputSize}{peephole})"
