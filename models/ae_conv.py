"""AE-Conv (Table 1): the previous 10 frames as the channels of one image.

    conv 10->16 7x7 (7,856) + tanh + 2x2 max pool
    conv 16->64 7x7 (50,240) + tanh
    conv 64->16 7x7 (50,192) + tanh
    dec: nearest x2 upsampling + conv 16->1 7x7 (785) + sigmoid

109,073 parameters. ``FrameWindows`` turns a sequence (T, B, 1, H, W) into the
T-9 sliding windows (T-9, B, 10, H, W), so the model predicts frame t+1 from
frames t-9..t for every t >= 9 (``first = 9``).
"""
import nnlite as nn
from nnlite.checks import check_array, check_shape

from .blocks import conv, decoder
from .video_predictor import VideoPredictor


class FrameWindows(nn.Module):
    """Sliding windows of ``n`` frames stacked as channels.

    Forward: ``y[k, b, c] = x[k + c, b, 0]`` for k in 0..T-n, c in 0..n-1.
    Backward: every input frame collects the gradient of each window that
    contains it: ``dL/dx[t, b, 0] = sum_{k + c = t} dL/dy[k, b, c]``, one
    vectorised slice-add per channel c.
    """
    parameter_names = ()

    def __init__(self, n=10):
        super().__init__()
        self.n = n

    def updateOutput(self, input):
        check_array(self, input, (5,), layout="(T, B, 1, H, W)")
        T = input.shape[0]
        if T < self.n or input.shape[2] != 1:
            raise ValueError(f"{self.typename()}: input must be (T, B, 1, H, W) with T >= {self.n}, "
                             f"got shape {tuple(input.shape)}")
        xp = nn.get_xp(input)
        self.output = xp.stack([input[c:T - self.n + 1 + c, :, 0] for c in range(self.n)], axis=2)
        return self.output

    def updateGradInput(self, input, gradOutput):
        xp = nn.get_xp(input)
        K = input.shape[0] - self.n + 1
        check_shape(self, gradOutput, (K, input.shape[1], self.n) + tuple(input.shape[3:]))
        self.gradInput = xp.zeros_like(input)
        for c in range(self.n):
            self.gradInput[c:K + c, :, 0] += gradOutput[:, :, c]
        return self.gradInput

    def extra_repr(self):
        return f"({self.n})"


class AEConv(VideoPredictor, nn.Sequential):
    first = 9

    def __init__(self, height=64, width=64, window=10):
        self.first = window - 1
        body = nn.Sequential(conv(window, 16, 7), nn.Tanh(), nn.SpatialMaxPooling(2, 2),
                             conv(16, 64, 7), nn.Tanh(), conv(64, 16, 7), nn.Tanh(), decoder())
        super().__init__(FrameWindows(window), nn.Sequencer(body))
