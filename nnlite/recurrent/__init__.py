"""Recurrent modules: each consumes a whole sequence and runs BPTT inside (SPEC §3)."""
from .base import AbstractRecurrent, fold_time, unfold_time
from .cell import AbstractLSTM
from .convlstm import ConvLSTM, UntiedConvLSTM
from .lstm import LSTM
from .sequencer import Sequencer
