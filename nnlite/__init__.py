"""nnlite: a small, faithful Torch7-style neural-network library on NumPy and CuPy.

``import nnlite as nn`` and use Torch's names: ``nn.Sequential``,
``nn.SpatialConvolution``, ``nn.MSECriterion``, ``nn.optim.rmsprop``, ...
"""
from . import backend, init, jacobian
from .activations import Tanh
from .backend import get_xp, getRNGState, gpu_available, manualSeed, setRNGState, to_device, to_numpy
from .containers import Container, Sequential
from .criterions import Criterion, MSECriterion
from .linear import Linear
from .module import Module

__version__ = "0.1.0"
from .flow import BilinearSampler, GridGenerator, HuberPenalty
from . import visual
from .activations import Clamp, ReLU, Sigmoid, Sqrt, Square
from .conv import SpatialConvolution
from .pooling import SpatialMaxPooling, SpatialUpSamplingNearest
from .scale import CMul, Mul
from .shape import Reshape, Transpose, View
from .containers import ConcatTable, ParallelTable
from .tables import (CAddTable, CMulTable, FlattenTable, Identity, JoinTable, NarrowTable,
                     SelectTable, SplitTable)
from .criterions import BCECriterion, ClassNLLCriterion, CrossEntropyCriterion, SequencerCriterion
from . import optim
from .serialization import load, save
from .recurrent import AbstractRecurrent, ConvLSTM, LSTM, Sequencer, UntiedConvLSTM
