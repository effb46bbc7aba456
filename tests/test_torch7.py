"""Reading Torch7 .t7 files: tensors, tables, and nn modules with nnlite twins (nnlite.torch7)."""
import os

import numpy
import pytest

import nnlite as nn
from nnlite import jacobian
from tests.test_recurrent import conv_ref, sigmoid

torchfile = pytest.importorskip("torchfile")
DATA = os.path.join(os.path.dirname(__file__), "data", "torch7")


def path(name):
    return os.path.join(DATA, name)


def test_tensors_and_tables():
    d = nn.load_t7(path("doubletensor.t7"))
    assert d.dtype == numpy.float64
    numpy.testing.assert_array_equal(d, [[1, 2, 3], [4, 5, 6.9]])
    f = nn.load_t7(path("floattensor.t7"))
    assert f.dtype == numpy.float32 and f.ndim == 3
    assert nn.load_t7(path("list_table.t7")) == ["hello", "world", "third item", 123]
    table = nn.load_t7(path("map_table1.t7"))  # key 0 as well as 1..4: a dict, not a list
    assert type(table) is dict and table == {0: "zero", 1: "hello", 2: "world", 3: "third item", 4: 123}


def test_an_nngraph_module_gives_the_originals_output(rng):
    g = nn.load_t7(path("gmodule_with_linear_identity.t7"))
    assert [m.typename() for m in g.modules] == ["nn.Identity", "nn.Identity", "nn.Linear", "nn.CAddTable"]
    # the Linear's numbers as torchfile reads them, independently of the converter
    raw = torchfile.load(path("gmodule_with_linear_identity.t7"))
    lin = [n._obj[b"data"][b"module"] for n in raw._obj[b"forwardnodes"]
           if n._obj[b"data"].get(b"module") is not None
           and n._obj[b"data"][b"module"]._typename == b"nn.Linear"][0]
    W, bias = lin._obj[b"weight"], lin._obj[b"bias"]
    a, b = rng.standard_normal((3, 1)), rng.standard_normal((3, 2))
    # the graph the file was written from: CAddTable{b, Linear(a)}
    numpy.testing.assert_allclose(g.forward([a, b]), b + a @ W.T + bias, rtol=1e-12)
    errs = jacobian.testAll(g, [a, b])
    assert max(errs.values()) < 1e-6, errs
    assert jacobian.testIO(g, [a, b]) == 0


def obj(typename, **fields):
    return torchfile.TorchObject(typename.encode(), fields)


def viorik_gate(wx, bx, wh, act):
    para = obj("nn.ParallelTable", modules={1: obj("cudnn.SpatialConvolution", weight=wx, bias=bx),
                                             2: obj("nn.SpatialConvolutionNoBias", weight=wh)})
    return obj("nn.Sequential", modules={1: obj("nn.NarrowTable"), 2: para, 3: obj("nn.CAddTable"),
                                         4: obj(act)})


def viorik_lstm(rng, inp, out, kc, km, untied=False):
    """A Torch7 nn.ConvLSTM (or UntiedConvLSTM) object as viorik's code built it, and its
    per-gate weights ``{gate: (Wx, bx, Wh)}`` (``{gate: (W, b)}`` for the untied first step)."""
    w = {g: (rng.standard_normal((out, inp, kc, kc)) * 0.3, rng.standard_normal(out) * 0.3,
             rng.standard_normal((out, out, km, km)) * 0.3) for g in "ifgo"}
    fields = dict(inputSize=inp, outputSize=out, kc=kc, km=km, stride=1, rho=10,
                  inputGate=viorik_gate(*w["i"], "nn.Sigmoid"), forgetGate=viorik_gate(*w["f"], "nn.Sigmoid"),
                  cellGate=viorik_gate(*w["g"], "nn.Tanh"), outputGate=viorik_gate(*w["o"], "nn.Sigmoid"))
    first = {}
    if untied:
        for g, name, act in (("i", "inputGateUntied", "nn.Sigmoid"), ("g", "cellGateUntied", "nn.Tanh"),
                             ("o", "outputGateUntied", "nn.Sigmoid")):
            first[g] = (rng.standard_normal((out, inp, kc, kc)) * 0.3, rng.standard_normal(out) * 0.3)
            conv = obj("cudnn.SpatialConvolution", weight=first[g][0], bias=first[g][1])
            fields[name] = obj("nn.Sequential", modules={1: conv, 2: obj(act)})
        fields["untiedModule"] = obj("nn.Sequential")
    return obj("nn.UntiedConvLSTM" if untied else "nn.ConvLSTM", **fields), w, first


def viorik_ref(xs, w, first, kc, km):
    """viorik's equations, one convolution pair per gate (the untied gates at step 0)."""
    h = c = None
    ref = []
    for xt in xs:
        if h is None and first:
            a = {g: conv_ref(xt, *first[g], 1, kc // 2) for g in "igo"}
            c = sigmoid(a["i"]) * numpy.tanh(a["g"])
        else:
            a = {g: conv_ref(xt, w[g][0], w[g][1], 1, kc // 2)
                 + (0 if h is None else conv_ref(h, w[g][2], None, 1, km // 2)) for g in "ifgo"}
            c = sigmoid(a["i"]) * numpy.tanh(a["g"]) + (0 if c is None else sigmoid(a["f"]) * c)
        h = sigmoid(a["o"]) * numpy.tanh(c)
        ref.append(h)
    return numpy.stack(ref)


def test_a_viorik_convlstm_converts_to_nnlites_gate_order(rng):
    lstm, w, _ = viorik_lstm(rng, 2, 3, 3, 5)
    reader = nn.torch7._Reader("synthetic")
    m = reader.convert(obj("nn.Sequential", modules={1: lstm, 2: obj("nn.Tanh")}), "obj")
    assert type(m[0]) is nn.ConvLSTM and m[0].weight.shape == (12, 2, 3, 3)
    x = rng.standard_normal((3, 2, 2, 5, 4))
    numpy.testing.assert_allclose(m.forward(x), numpy.tanh(viorik_ref(x, w, {}, 3, 5)), rtol=1e-10, atol=1e-12)


def test_viorik_demo_model_loads_whole(rng):
    """model-demo-ConvLSTM.lua's net in rnn's Sequencer: encoder (conv, tanh, max pooling),
    UntiedConvLSTM, decoder (nearest upsampling, conv), sigmoid."""
    enc_w, enc_b = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)
    dec_w, dec_b = rng.standard_normal((1, 3, 3, 3)), rng.standard_normal(1)

    def conv(w, b):
        return obj("cudnn.SpatialConvolution", nInputPlane=w.shape[1], nOutputPlane=w.shape[0], kW=3, kH=3,
                   dW=1, dH=1, padW=1, padH=1, weight=w.reshape(w.shape[0], -1), bias=b)
    lstm, w, first = viorik_lstm(rng, 2, 3, 3, 3, untied=True)
    encoder = obj("nn.Sequential", modules={1: conv(enc_w, enc_b), 2: obj("cudnn.Tanh"),
                                            3: obj("nn.SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2)})
    decoder = obj("nn.Sequential", modules={1: obj("nn.SpatialUpSamplingNearest", scale_factor=2),
                                            2: conv(dec_w, dec_b)})
    net = obj("nn.Sequential", modules={1: encoder, 2: lstm, 3: decoder, 4: obj("cudnn.Sigmoid")})
    seq = obj("nn.Sequencer", module=obj("nn.Recursor", module=net), modules={1: net})
    m = nn.torch7._Reader("demo").convert(seq, "obj")
    assert isinstance(m, nn.Sequencer) and type(m.module[1]) is nn.UntiedConvLSTM
    x = rng.uniform(0, 1, (3, 2, 1, 6, 6))
    enc = numpy.stack([numpy.tanh(conv_ref(xt, enc_w, enc_b, 1, 1)) for xt in x])
    enc = enc.reshape(3, 2, 2, 3, 2, 3, 2).max(axis=(4, 6))
    h = viorik_ref(enc, w, first, 3, 3)
    ref = numpy.stack([sigmoid(conv_ref(ht.repeat(2, axis=-2).repeat(2, axis=-1), dec_w, dec_b, 1, 1)) for ht in h])
    numpy.testing.assert_allclose(m.forward(x), ref, rtol=1e-10, atol=1e-12)


def test_unknown_classes_and_damaged_files_are_value_errors(tmp_path):
    reader = nn.torch7._Reader("f.t7")
    with pytest.raises(ValueError, match=r"f.t7: obj\[0\] is a nn.Bogus, which has no nnlite twin"):
        reader.convert({1: obj("nn.Bogus")}, "obj")
    bad = tmp_path / "cut.t7"
    with open(path("gmodule_with_linear_identity.t7"), "rb") as f:
        bad.write_bytes(f.read()[:300])
    with pytest.raises(ValueError, match="cut.t7 is not a readable Torch7 file"):
        nn.load_t7(str(bad))
    loop = {}
    loop[1] = loop
    with pytest.raises(ValueError, match="contains itself"):
        reader.convert(loop, "obj")
