"""AE-fcLSTM (Table 1): enc -> flatten -> fully connected LSTMs -> Linear -> reshape -> dec.

The paper gives 33,623,649 parameters but not the layer sizes. We use
LSTM 16384->384, LSTM 384->384 (no peepholes) and Linear 384->16384, which with
enc (800) and dec (785) gives 33,247,793 parameters, 1.1% below the paper's
figure (SPEC §5 asks for within 5%). This resembles Srivastava et al.'s
future predictor with a one-frame horizon.
"""
import nnlite as nn

from .blocks import decoder, encoder
from .video_predictor import VideoPredictor


class AEfcLSTM(VideoPredictor, nn.Sequential):
    def __init__(self, height=64, width=64, hidden=384, rho=10, forget_bias=1.0):
        """``forget_bias``: the LSTMs' forget-gate bias (1, the paper; 0, the original scripts)."""
        h, w = height // 2, width // 2
        n = 16 * h * w
        super().__init__(
            nn.Sequencer(nn.Sequential(encoder(), nn.View(n))),
            nn.LSTM(n, hidden).initBias(forget_bias, 0.0),
            nn.LSTM(hidden, hidden).initBias(forget_bias, 0.0),
            nn.Sequencer(nn.Sequential(nn.Linear(hidden, n), nn.View(16, h, w), decoder())))
