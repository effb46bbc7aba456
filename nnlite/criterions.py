"""Loss functions (Torch criterions): ``forward(input, target) -> float``,
``backward(input, target) -> gradInput = dL/dinput``."""
from .backend import get_xp
from .checks import check_array, check_same_shape

_ANY_RANK = tuple(range(1, 9))


class Criterion:
    """Base class: keeps ``output`` (the loss, a Python float) and ``gradInput``."""
    _transient = ("output", "gradInput")

    def __init__(self):
        self.output = 0.0
        self.gradInput = None

    def forward(self, input, target):
        return self.updateOutput(input, target)

    def backward(self, input, target):
        return self.updateGradInput(input, target)

    @classmethod
    def typename(cls):
        return "nn." + cls.__name__

    def __repr__(self):
        return self.typename()

    def _check_pair(self, input, target):
        check_array(self, input, _ANY_RANK)
        check_array(self, target, _ANY_RANK, what="target")
        check_same_shape(self, input, target, "input", "target")


class MSECriterion(Criterion):
    """``L = sum((x - t)^2) / N`` (N = number of elements if sizeAverage, else 1).

    ``dL/dx = 2 (x - t) / N``.
    """

    def __init__(self, sizeAverage=True):
        super().__init__()
        self.sizeAverage = sizeAverage

    def updateOutput(self, input, target):
        self._check_pair(input, target)
        d = input - target
        n = input.size if self.sizeAverage else 1
        self.output = float(get_xp(d).vdot(d.ravel(), d.ravel())) / n
        return self.output

    def updateGradInput(self, input, target):
        self._check_pair(input, target)
        n = input.size if self.sizeAverage else 1
        self.gradInput = (input - target) * (2.0 / n)
        return self.gradInput
