"""AE-ConvLSTM (Table 1): enc -> ConvLSTM 16->64 (7x7) -> ConvLSTM 64->16 (7x7) -> dec.

1,256,305 parameters = 800 (enc) + 1,003,776 + 250,944 (memories) + 785 (dec).
Encoder and decoder are applied to all T*B frames at once (``Sequencer`` folds
time into the batch); only the ConvLSTMs step through time.
"""
import nnlite as nn

from .blocks import decoder, encoder, memory
from .video_predictor import VideoPredictor


class AEConvLSTM(VideoPredictor, nn.Sequential):
    def __init__(self, height=64, width=64, rho=9999, forget_bias=1.0):
        """``forget_bias``: the memories' forget-gate bias (1, the paper; 0, the original scripts)."""
        super().__init__(nn.Sequencer(encoder()), memory(16, 64, rho=rho, forget_bias=forget_bias),
                         memory(64, 16, rho=rho, forget_bias=forget_bias), nn.Sequencer(decoder()))
