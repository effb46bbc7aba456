"""Building blocks shared by the paper's models (Patraucean et al. 2016, Table 1).

Frames are 64x64x1. The spatial encoder ``enc`` is conv 1->16 7x7 (pad 3) + tanh +
2x2 max pooling (800 parameters); the decoder ``dec`` mirrors it: nearest x2
upsampling + conv 16->1 7x7 (pad 3) (785 parameters) + a sigmoid, since the
Moving MNIST loss is binary cross-entropy on frames in [0, 1]. ``OnePassBackward`` is the
backward of the models wired by hand (AE-ConvLSTM-flow, SegNet, SegNet-flow).
"""
import nnlite as nn


def conv(n_in, n_out, k):
    """A stride-1 'same' convolution with the paper's Xavier init (bias 0)."""
    m = nn.SpatialConvolution(n_in, n_out, k, k, 1, 1, k // 2, k // 2)
    nn.init.xavier_(m.weight, m.bias)
    return m


def encoder(n_in=1, features=16, k=7):
    return nn.Sequential(conv(n_in, features, k), nn.Tanh(), nn.SpatialMaxPooling(2, 2))


def decoder(features=16, n_out=1, k=7):
    return nn.Sequential(nn.SpatialUpSamplingNearest(2), conv(features, n_out, k), nn.Sigmoid())


def flow_regressor(memory_features, height, width, k=15, zero_1x1=False, clamp=False):
    """The paper's Theta: conv 64->2 15x15, conv 2->2 15x15, then a trainable scalar per channel.

    The scalars (a ``CMul`` of shape (2, 1, 1): y channel, x channel) start at
    2/h and 2/w, turning a displacement in pixels into normalised grid units,
    so the convolutions can work in pixels. 28,802 + 902 + 2 parameters.

    Two options reproduce the original Torch code (SPEC §8), both off in the paper:

    * ``zero_1x1``: a 1x1 convolution 2->2 with weight and bias 0 after the two 15x15
      convolutions (+6 parameters). The flow then starts at exactly 0, so the first
      prediction is the decoded current features sampled at the identity grid. The
      layer's weight gradient is not 0, so the flow leaves 0 at the first update.
    * ``clamp``: ``Clamp(-0.5, 0.5)`` after the scalars: at most a quarter of the
      normalised range (about 8 pixels at 32x32) per frame, and no gradient reaches
      a flow component in saturation.
    """
    scale = nn.CMul(2, 1, 1)
    scale.weight[0] = 2.0 / height
    scale.weight[1] = 2.0 / width
    layers = [conv(memory_features, 2, k), conv(2, 2, k)]
    if zero_1x1:
        last = nn.SpatialConvolution(2, 2, 1, 1)
        last.weight.fill(0)
        last.bias.fill(0)
        layers.append(last)
    layers.append(scale)
    if clamp:
        layers.append(nn.Clamp(-0.5, 0.5))
    return nn.Sequential(*layers)


def memory(n_in, n_out, k=7, rho=9999, forget_bias=1.0):
    """A ConvLSTM with the paper's memory init: U(-0.08, 0.08), forget-gate bias ``forget_bias``.

    ``forget_bias``: 1 in the paper; the original training scripts called ``initBias(0, 0)``
    (SPEC §8). The other gate biases are 0 either way.
    """
    return nn.ConvLSTM(n_in, n_out, rho, k, k).initBias(forget_bias, 0.0)


def count_parameters(module):
    return sum(p.size for p in module.parameters()[0])


class OnePassBackward:
    """``updateGradInput``, ``accGradParameters`` and ``backward`` through one pass,
    ``_backward(input, gradOutput, scale, params)``, where ``params`` says whether the
    parameter gradients accumulate (``accGradParameters`` also recomputes gradInput: the
    pass needs it to reach the earlier modules)."""

    def updateGradInput(self, input, gradOutput):
        return self._backward(input, gradOutput, 1.0, params=False)

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self._backward(input, gradOutput, scale, params=True)

    def backward(self, input, gradOutput, scale=1.0):
        return self._backward(input, gradOutput, scale, params=True)
