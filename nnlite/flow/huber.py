"""The smoothness penalty H of the paper (section 3.2.2, equation (2)) on a flow map."""
from ..backend import get_xp
from ..checks import check_int, check_nonempty_batch, check_shape, check_spatial
from ..module import Module


def central_difference(t, axis):
    """``(t[i+1] - t[i-1]) / 2`` along ``axis``, reading 0 beyond the ends (zero padding).

    This is the cross-correlation with the stencil (-1/2, 0, 1/2), the original's
    fixed 3x3 gradient filters. As a linear map D it is antisymmetric
    (``D^T = -D``): ``<D t, g> = sum_i t[i] (g[i-1] - g[i+1]) / 2``.
    """
    xp = get_xp(t)
    width = [(0, 0)] * t.ndim
    width[axis] = (1, 1)
    padded = xp.pad(t, width)
    n = t.shape[axis]
    ahead = [slice(None)] * t.ndim
    behind = [slice(None)] * t.ndim
    ahead[axis], behind[axis] = slice(2, n + 2), slice(0, n)
    return (padded[tuple(ahead)] - padded[tuple(behind)]) / 2


class HuberPenalty(Module):
    """``HuberPenalty(transf, weight=1e-2, threshold=1e-3, sizeAverage=True)``.

    The identity in the forward pass (``output`` *is* the input, not a copy); in
    the backward pass it adds the gradient of a smoothness penalty on its input,
    the paper's Huber penalty on the flow's spatial gradient (the original's
    ``SmoothHuberPenalty``).

    Input T: (B, transf, h, w) or (transf, h, w). ``transf`` is the number of
    channels of the transformation map (the original's ``opt.transf``: 2 for a
    flow, one (y, x) displacement per pixel); each channel is penalised on its own.

    Penalty, with delta = ``threshold`` and ``m = weight / N`` (N = number of input
    elements) when ``sizeAverage`` else ``m = weight``::

        gx = (T[.., y, x+1] - T[.., y, x-1]) / 2,  gy = (T[.., y+1, x] - T[.., y-1, x]) / 2
                                              (zero padding; per batch item and channel)
        a  = sqrt(gx^2 + gy^2)
        H(a) = a^2 / 2 if a <= delta else delta (a - delta / 2)
        P  = m * sum over batch, channels and pixels of H(a)

    ``loss`` keeps P of the last forward for logging, as a 0-d array of the input's
    namespace (on a GPU it stays there until the training step reads every logged
    term in one transfer); it is not part of the output.

    Backward: ``gradInput = gradOutput + dP/dT`` (a new array; gradOutput is left
    alone). With ``gx = Dx T`` and ``gy = Dy T`` linear and ``D^T = -D`` (see
    ``central_difference``)::

        dP/dgx = m H'(a) gx / a,   dP/dgy = m H'(a) gy / a
        dP/dT  = Dx^T(dP/dgx) + Dy^T(dP/dgy) = -(Dx(dP/dgx) + Dy(dP/dgy))

    ``H'(a) = a`` in the quadratic zone and ``delta`` outside, so
    ``H'(a) / a = delta / max(a, delta)``: 1 in the quadratic zone (where the
    penalty is ``|grad T|^2 / 2``), written without a division by ``a``, so a
    zero flow gives a zero gradient, never NaN.

    Differences from the original: it copied its input in the forward pass (here
    the output is the input itself: the identity costs nothing); its in-place
    reuse of buffers turned the penalty into a plain quadratic one of weight 1 (and
    the module was left commented out of the model); its ``sizeAverage`` could not
    be turned off (``sizeAverage or true``). This module does what the paper says.
    No parameters.
    """
    parameter_names = ()
    _transient = Module._transient + ("loss",)

    def __init__(self, transf, weight=1e-2, threshold=1e-3, sizeAverage=True):
        super().__init__()
        self.transf = check_int(self, transf, "transf (the number of channels)")
        self.weight = float(weight)
        self.threshold = float(threshold)
        if self.threshold <= 0:
            raise ValueError(f"{self.typename()}: threshold (the Huber delta) must be > 0, "
                             f"got {threshold}")
        self.sizeAverage = bool(sizeAverage)
        self.loss = None

    def _check(self, input):
        check_nonempty_batch(self, check_spatial(self, input, channels=self.transf, what="input"), input)

    def _multiplier(self, input):
        return self.weight / input.size if self.sizeAverage else self.weight

    def _spatial_gradient(self, input):
        gx = central_difference(input, -1)
        gy = central_difference(input, -2)
        return gx, gy, get_xp(input).sqrt(gx * gx + gy * gy)

    def updateOutput(self, input):
        self._check(input)
        xp = get_xp(input)
        delta = self.threshold
        _, _, a = self._spatial_gradient(input)
        huber = xp.where(a <= delta, a * a / 2, delta * (a - delta / 2))
        self.loss = xp.asarray(self._multiplier(input) * huber.sum())
        self.output = input
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check(input)
        check_shape(self, gradOutput, input.shape)
        gx, gy, a = self._spatial_gradient(input)
        k = self._multiplier(input) * self.threshold / get_xp(input).maximum(a, self.threshold)
        self.gradInput = gradOutput - central_difference(k * gx, -1) - central_difference(k * gy, -2)
        return self.gradInput

    def extra_repr(self):
        return (f"({self.transf}, weight={self.weight:g}, threshold={self.threshold:g}"
                f"{'' if self.sizeAverage else ', sizeAverage=False'})")
