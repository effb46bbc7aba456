"""Helpers shared by the recurrent tests."""
import nnlite as nn
from nnlite import jacobian
from tests.helpers import TOL


def assert_gradients(module, input, extra=()):
    """d output / d input, and d output / d (every parameter and each ``extra`` (array,
    gradient) pair, e.g. ``(m.h0, m.gradH0)``), against finite differences.

    All parameters are checked in one backprop sweep (the tester takes lists), which
    keeps sequence-long Jacobians fast.
    """
    params, grads = module.parameters()
    params = params + [a for a, _ in extra]
    grads = grads + [g for _, g in extra]
    err_in = jacobian.testJacobian(module, input)
    err_params = jacobian.testJacobianParameters(module, input, params, grads)
    assert err_in < TOL and err_params < TOL, f"Jacobian errors: input {err_in}, parameters {err_params}"


class FromState(nn.Container):
    """Runs a remembering recurrent module from a fixed carried state at every forward,
    so a Jacobian of a *second* sequence (the one after ``state`` was left) can be taken."""

    def __init__(self, module, state):
        super().__init__(module)
        self.state = state

    def updateOutput(self, input):
        self.modules[0].lastState = self.state
        self.output = self.modules[0].forward(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self.modules[0].updateGradInput(input, gradOutput)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):
        self.modules[0].accGradParameters(input, gradOutput, scale)
