"""nnlite: a small, faithful Torch7-style neural-network library on NumPy and CuPy.

``import nnlite as nn`` and use Torch's names: ``nn.Sequential``,
``nn.SpatialConvolution``, ``nn.MSECriterion``, ``nn.optim.rmsprop``, ...
"""
from . import blas_kernels

#: OpenBLAS's kernel set that importing nnlite chose for NumPy ("Haswell" on an AMD Zen 4
#: when nothing had chosen one and NumPy was not loaded yet), or None: see ``blas_kernels``
BLAS_KERNELS = blas_kernels.choose()

from . import backend, init, jacobian, optim, torch7, visual  # these load NumPy: after the choice
from .activations import Clamp, ReLU, Sigmoid, Sqrt, Square, Tanh
from .backend import get_xp, getRNGState, gpu_available, manualSeed, setRNGState, to_device, to_numpy
from .bilinear import Bilinear
from .containers import Concat, ConcatTable, Container, DepthConcat, ParallelTable, Sequential
from .conv import SpatialConvolution
from .criterions import (AbsCriterion, BCECriterion, ClassNLLCriterion, Criterion,
                         CrossEntropyCriterion, DistKLDivCriterion, MarginCriterion, MSECriterion,
                         MultiMarginCriterion, ParallelCriterion, SequencerCriterion,
                         SmoothL1Criterion)
from .dropout import Dropout, SpatialDropout
from .flow import BilinearSampler, GridGenerator, HuberPenalty
from .fullconv import SpatialFullConvolution
from .linear import Linear
from .lookup import LookupTable
from .module import Module
from .normalization import BatchNormalization, SpatialBatchNormalization
from .padding import SpatialReflectionPadding, SpatialZeroPadding
from .pointwise import (ELU, Abs, AddConstant, Exp, HardTanh, LeakyReLU, Log, MulConstant, Power,
                        PReLU, SoftPlus, Threshold)
from .pooling import (SpatialAveragePooling, SpatialMaxPooling, SpatialMaxUnpooling,
                      SpatialUpSamplingNearest)
from .recurrent import LSTM, AbstractRecurrent, ConvLSTM, Sequencer, UntiedConvLSTM
from .scale import CMul, Mul
from .select import Narrow, Padding, Replicate, Select
from .serialization import load, save
from .shape import Reshape, Transpose, View
from .softmax import LogSoftMax, SoftMax, SpatialSoftMax
from .tables import (CAddTable, CDivTable, CMulTable, CSubTable, FlattenTable, Identity, JoinTable,
                     NarrowTable, SelectTable, SplitTable)
from .torch7 import GModule, load_t7

__version__ = "0.1.0"
