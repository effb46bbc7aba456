"""The flow decoder of the paper (section 3.2): the Huber smoothness penalty H on the
predicted flow, the grid generator GG and the bilinear image sampler S."""
from .grid import GridGenerator, base_grid, normalise_flow
from .huber import HuberPenalty
from .sampler import BilinearSampler
