"""nnlite: a small, faithful Torch7-style neural-network library on NumPy and CuPy.

``import nnlite as nn`` and use Torch's names: ``nn.Sequential``,
``nn.SpatialConvolution``, ``nn.MSECriterion``, ``nn.optim.rmsprop``, ...
"""
from . import backend, init, jacobian
from .activations import Tanh
from .backend import get_xp, gpu_available, manualSeed, to_device, to_numpy
from .containers import Container, Sequential
from .criterions import Criterion, MSECriterion
from .linear import Linear
from .module import Module

__version__ = "0.1.0"
