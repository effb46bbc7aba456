"""The architectures of Patraucean et al. (2016), Table 1, SegNet-flow (their section 5.2,
``segnet.py``), and the LSTM encoder-decoders of Srivastava et al. (2015) (``srivastava.py``),
built from nnlite modules.

``build(name, **options)`` makes one by its command-line name (``options(name)`` lists
what it takes); see each module for its layers, parameter count and options.
"""
import inspect

from .ae_conv import AEConv, FrameWindows
from .ae_convlstm import AEConvLSTM
from .ae_convlstm_flow import AEConvLSTMFlow
from .ae_fclstm import AEfcLSTM
from .blocks import count_parameters
from .segnet import SegNet, SegNetFlow
from .srivastava import (LSTMAutoencoder, LSTMComposite, LSTMCompositeConditionalFuture,
                         LSTMConditionalFuturePredictor, LSTMFuturePredictor)

MODELS = {
    "ae-conv": AEConv,
    "ae-fclstm": AEfcLSTM,
    "ae-convlstm": AEConvLSTM,
    "ae-convlstm-flow": AEConvLSTMFlow,
    "lstm-autoencoder": LSTMAutoencoder,
    "lstm-future": LSTMFuturePredictor,
    "lstm-composite": LSTMComposite,
    "lstm-future-cond": LSTMConditionalFuturePredictor,
    "lstm-composite-cond": LSTMCompositeConditionalFuture,
    "segnet": SegNet,
    "segnet-flow": SegNetFlow,
}

#: the paper's Table 1 (parameters, per-pixel test error)
PAPER_TABLE1 = {
    "ae-conv": (109073, 0.0948),
    "ae-fclstm": (33623649, 0.0650),
    "ae-convlstm": (1256305, 0.0641),
    "ae-convlstm-flow": (1035067, 0.0439),
}

#: Srivastava et al.'s Table 2 (2 layers): cross-entropy of the 10 future frames per sequence
PAPER_TABLE2 = {
    "lstm-future": 350.2,
    "lstm-composite": 344.9,
    "lstm-future-cond": 343.5,
    "lstm-composite-cond": 341.2,
}


def options(name):
    """The keyword options of model ``name``'s constructor, with their defaults."""
    params = inspect.signature(MODELS[name].__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self"}


def build(name, **kwargs):
    """The model ``name`` (a key of ``MODELS``) built with the options ``kwargs``.

    An option the model does not take is a ``ValueError`` naming the model, the option
    and the options it does take (e.g. ``flow_zero_1x1`` applies to ae-convlstm-flow only).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    known = options(name)
    for key in kwargs:
        if key not in known:
            raise ValueError(f"model {name!r} has no option {key!r}; its options are "
                             f"{', '.join(known)}")
    return MODELS[name](**kwargs)
