"""The architectures of Patraucean et al. (2016), Table 1, built from nnlite modules.

``build(name)`` makes one by its command-line name; see each module for its layers
and parameter count.
"""
from .ae_conv import AEConv, FrameWindows
from .ae_convlstm import AEConvLSTM
from .ae_convlstm_flow import AEConvLSTMFlow
from .ae_fclstm import AEfcLSTM
from .blocks import count_parameters

MODELS = {
    "ae-conv": AEConv,
    "ae-fclstm": AEfcLSTM,
    "ae-convlstm": AEConvLSTM,
    "ae-convlstm-flow": AEConvLSTMFlow,
}

#: the paper's Table 1 (parameters, per-pixel test error)
PAPER_TABLE1 = {
    "ae-conv": (109073, 0.0948),
    "ae-fclstm": (33623649, 0.0650),
    "ae-convlstm": (1256305, 0.0641),
    "ae-convlstm-flow": (1035067, 0.0439),
}


def build(name, **kwargs):
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
    return cls(**kwargs)
