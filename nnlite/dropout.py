"""Dropout (Srivastava et al. 2014) and SpatialDropout (Tompson et al. 2015), as in torch/nn.

The masks come from nnlite's generator (``nnlite.manualSeed``, ``getRNGState``), drawn on
the host and copied to the input's device, so a seed fixes the masks on CPU and GPU alike
and a checkpoint that carries the RNG state resumes with the same masks.
"""
from .backend import get_xp, host_rng
from .checks import ANY_RANK, check_array, check_same_shape, check_spatial
from .module import Module


class _Dropout(Module):
    """Shared by the dropout modules. A subclass says which inputs it takes (``_check``), the
    shape of its mask (``_noise_shape``), when it draws one (``_masked``) and how the kept
    values are scaled in training (``_train_scale``) and otherwise (``_eval_scale``).

    Backward differentiates what the last forward did, on an input of that forward's shape:
    with its mask when it drew one, else with the constant scale.
    """
    parameter_names = ()
    _transient = Module._transient + ("noise", "_input_shape")

    def __init__(self, p):
        super().__init__()
        self.setp(p)
        self.noise = None
        self._input_shape = None

    def setp(self, p):
        """Set the drop probability (Torch's ``setp``)."""
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"{self.typename()}: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        return self

    def updateOutput(self, input):
        self._check(input)
        self._input_shape = tuple(input.shape)
        if self._masked():
            keep = host_rng().random(self._noise_shape(input)) < 1 - self.p
            self.noise = get_xp(input).asarray((keep * self._train_scale()).astype(input.dtype))
            self.output = input * self.noise
        else:
            self.noise = None
            self.output = input * self._eval_scale()
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check(input)
        check_array(self, gradOutput, ANY_RANK, what="gradOutput")
        check_same_shape(self, input, gradOutput)
        self._check_forward_seen(self._input_shape, input)  # a stale mask would broadcast silently
        self.gradInput = gradOutput * (self.noise if self.noise is not None else self._eval_scale())
        return self.gradInput

    def extra_repr(self):
        return f"({self.p:g})"


class Dropout(_Dropout):
    """``Dropout(p=0.5, v1=False, inplace=False, stochasticInference=False)``.

    Training mode: ``y = x * noise`` with ``noise = m / (1 - p)``, m ~ Bernoulli(1 - p) drawn
    anew for every element at each forward (Torch's default "v2", inverted dropout: the
    expectation of y is x, so evaluate mode is the identity, ``y = x``).
    With ``v1=True``, Torch's original form: ``noise = m`` in training and ``y = (1 - p) x``
    in evaluate mode. ``stochasticInference=True`` keeps drawing masks in evaluate mode.

    y is linear in x for a fixed mask: ``dL/dx = noise * dL/dy`` (the mask of the last
    forward), and in evaluate mode ``dL/dx = dL/dy`` (``(1 - p) dL/dy`` with v1).
    ``inplace`` is Torch's memory saving; nnlite does not offer it (True is an error).
    """

    def __init__(self, p=0.5, v1=False, inplace=False, stochasticInference=False):
        super().__init__(p)
        if inplace:
            raise ValueError(f"{self.typename()}: inplace dropout is not offered by nnlite; "
                             f"use inplace=False")
        self.v2 = not v1
        self.stochastic_inference = bool(stochasticInference)

    def _check(self, input):
        check_array(self, input, ANY_RANK)

    @staticmethod
    def _noise_shape(x):
        return tuple(x.shape)

    def _masked(self):
        return self.p > 0 and (self.train or self.stochastic_inference)

    def _train_scale(self):
        return 1 / (1 - self.p) if self.v2 else 1.0

    def _eval_scale(self):
        return 1.0 if self.v2 else 1 - self.p


class SpatialDropout(_Dropout):
    """``SpatialDropout(p=0.5)``: drops whole feature maps of a (C, H, W) or (B, C, H, W) input.

    Training mode: ``y[b, c] = m[b, c] x[b, c]`` with one m ~ Bernoulli(1 - p) per map (the
    pixels of a map are correlated, so dropping them one by one would remove little). As in
    Torch's SpatialDropout the kept maps are not rescaled in training; evaluate mode
    multiplies by the keep probability instead: ``y = (1 - p) x``.

    ``dL/dx[b, c] = m[b, c] dL/dy[b, c]`` in training, ``(1 - p) dL/dy`` in evaluate mode
    (Torch refused backward in evaluate mode; this is its derivative).
    """

    def __init__(self, p=0.5):
        super().__init__(p)

    def _check(self, input):
        check_spatial(self, input)

    @staticmethod
    def _noise_shape(x):
        return tuple(x.shape[:-2]) + (1, 1)

    def _masked(self):
        return self.train

    def _train_scale(self):
        return 1.0

    def _eval_scale(self):
        return 1 - self.p
