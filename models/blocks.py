"""Building blocks shared by the paper's models (Patraucean et al. 2016, Table 1).

Frames are 64x64x1. The spatial encoder ``enc`` is conv 1->16 7x7 (pad 3) + tanh +
2x2 max pooling (800 parameters); the decoder ``dec`` mirrors it: nearest x2
upsampling + conv 16->1 7x7 (pad 3) (785 parameters) + a sigmoid, since the
Moving MNIST loss is binary cross-entropy on frames in [0, 1].
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


def flow_regressor(memory_features, height, width, k=15):
    """The paper's Theta: conv 64->2 15x15, conv 2->2 15x15, then a trainable scalar per channel.

    The scalars (a ``CMul`` of shape (2, 1, 1): y channel, x channel) start at
    2/h and 2/w, turning a displacement in pixels into normalised grid units,
    so the convolutions can work in pixels. 28,802 + 902 + 2 parameters.
    """
    scale = nn.CMul(2, 1, 1)
    scale.weight[0] = 2.0 / height
    scale.weight[1] = 2.0 / width
    return nn.Sequential(conv(memory_features, 2, k), conv(2, 2, k), scale)


def memory(n_in, n_out, k=7, rho=10):
    """A ConvLSTM with the paper's memory init (U(-0.08, 0.08), forget bias 1)."""
    return nn.ConvLSTM(n_in, n_out, rho, k, k)


def count_parameters(module):
    return sum(p.size for p in module.parameters()[0])
