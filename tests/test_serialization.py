"""nnlite.save / nnlite.load: HDF5 round trips, sharing, atomic writes and damaged files."""
import json
import os

import h5py
import numpy
import pytest

import nnlite as nn
from nnlite import serialization
from tests.helpers import host, on, rand


def mlp():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


class Cached(nn.Tanh):
    """A Tanh with a cache listed in ``_transient``: the cache must not reach the file."""
    _transient = nn.Tanh._transient + ("_cache",)


def round_trip(tmp_path, obj, name="obj.h5"):
    path = tmp_path / name
    nn.save(path, obj)
    return nn.load(path)


def test_sequential_round_trip(xp, rng, tmp_path):
    m = on(xp, mlp())
    x = rand(xp, rng, 5, 3)
    m.forward(x)
    other = round_trip(tmp_path, m)
    assert type(other) is nn.Sequential and repr(other) == repr(m)
    assert [type(c) for c in other.modules] == [nn.Linear, nn.Tanh, nn.Linear]
    for a, b in zip(m.parameters()[0] + m.parameters()[1], other.parameters()[0] + other.parameters()[1]):
        assert type(b) is numpy.ndarray and b.dtype == numpy.float64  # load returns host arrays
        numpy.testing.assert_array_equal(host(a), b)
    assert other.output is None and other[0].output is None  # results are not saved
    numpy.testing.assert_array_equal(host(on(xp, other).forward(x)), host(m.forward(x)))


def test_test_io_is_zero(xp, rng):
    m = on(xp, mlp())
    assert nn.jacobian.testIO(m, rand(xp, rng, 4, 3)) == 0
    assert nn.jacobian.testIO(m, rand(xp, rng, 3)) == 0


def test_gpu_arrays_are_marked_and_load_on_the_host(xp, tmp_path):
    nn.save(tmp_path / "a.h5", {"w": xp.arange(4, dtype=xp.float32)})
    with h5py.File(tmp_path / "a.h5") as f:
        assert f["obj/w"].attrs["device"] == ("cpu" if xp is numpy else "cuda")
    w = nn.load(tmp_path / "a.h5")["w"]
    assert type(w) is numpy.ndarray and w.dtype == numpy.float32
    numpy.testing.assert_array_equal(w, numpy.arange(4))


def test_checkpoint_of_nested_values(tmp_path):
    opt = nn.optim.RMSprop({"learningRate": 1e-4})
    ckpt = {
        "model": mlp(),
        "optim": opt.state_dict(),
        "step": 12,
        "rng": nn.backend.host_rng().bit_generator.state,  # 128-bit integers inside
        "nested": {"a": [numpy.arange(6, dtype=numpy.int32).reshape(2, 3), (1, "x", None, True, 2.5)],
                   "b": numpy.float32(0.25), "mask": numpy.array([True, False]),
                   "empty": numpy.zeros((0, 3)), "nan": float("nan"), "odd/key": {"": [], ".": ()}},
    }
    got = round_trip(tmp_path, ckpt)
    assert list(got) == list(ckpt)
    assert got["step"] == 12 and type(got["step"]) is int
    resumed = numpy.random.default_rng()
    resumed.bit_generator.state = got["rng"]
    assert resumed.random() == nn.backend.host_rng().random()
    assert got["optim"] == {"config": {"learningRate": 1e-4}, "state": {}}
    a = got["nested"]["a"]
    assert type(a) is list and a[0].dtype == numpy.int32 and a[0].shape == (2, 3)
    assert a[1] == (1, "x", None, True, 2.5) and type(a[1]) is tuple and type(a[1][3]) is bool
    assert type(got["nested"]["b"]) is numpy.float32 and got["nested"]["b"] == 0.25
    assert got["nested"]["mask"].tolist() == [True, False]
    assert got["nested"]["empty"].shape == (0, 3)
    assert numpy.isnan(got["nested"]["nan"])
    assert got["nested"]["odd/key"] == {"": [], ".": ()}


def test_scalars_and_none_at_the_top(tmp_path):
    assert round_trip(tmp_path, None) is None
    assert round_trip(tmp_path, "text") == "text"
    assert round_trip(tmp_path, [1, [2.0]]) == [1, [2.0]]


def test_criterion_round_trip(tmp_path):
    c = round_trip(tmp_path, nn.MSECriterion(sizeAverage=False))
    assert type(c) is nn.MSECriterion and c.sizeAverage is False
    x, t = numpy.ones((2, 2)), numpy.zeros((2, 2))
    assert c.forward(x, t) == 4.0


def test_transient_attributes_are_saved_as_none(tmp_path):
    m = Cached()
    m.forward(numpy.ones(3))
    m._cache = numpy.full(1000, 7.0)
    nn.save(tmp_path / "c.h5", m)
    with h5py.File(tmp_path / "c.h5") as f:
        assert json.loads(f["obj"].attrs["values"])["_cache"] is None
        assert len(f["obj"]) == 0  # no dataset at all: output and cache were dropped
    other = nn.load(tmp_path / "c.h5")
    assert type(other) is Cached and other._cache is None and other.output is None


def test_tied_parameters_stay_tied_and_are_written_once(tmp_path):
    a = nn.Linear(3, 3)
    b = nn.Linear(3, 3).share(a, "weight", "bias", "gradWeight", "gradBias")
    nn.save(tmp_path / "t.h5", nn.Sequential(a, b, a))
    with h5py.File(tmp_path / "t.h5") as f:  # one HDF5 object under two names (a hard link)
        assert f["obj/modules/0/weight"].id == f["obj/modules/1/weight"].id
    net = nn.load(tmp_path / "t.h5")
    assert net[1].weight is net[0].weight and net[1].gradBias is net[0].gradBias
    assert net[2] is net[0]  # one module reached twice loads as one object
    assert net[1].weight is not net[1].gradWeight


def test_views_of_get_parameters_share_memory_again(tmp_path):
    a = nn.Linear(3, 3)
    b = nn.Linear(3, 3).share(a, "weight", "bias", "gradWeight", "gradBias")
    c = nn.Linear(3, 2)
    net = nn.Sequential(a, b, c)
    flat, flat_grad = net.getParameters()
    got = round_trip(tmp_path, {"model": net, "flat": flat, "grad": flat_grad})
    model, flat2 = got["model"], got["flat"]
    numpy.testing.assert_array_equal(flat2, flat)
    assert model[1].weight is model[0].weight
    flat2[:] = 3.0  # the optimiser's write reaches every module, as before saving
    assert (model[0].weight == 3).all() and (model[0].bias == 3).all() and (model[2].weight == 3).all()
    got["grad"][:] = 1.0
    assert (model[2].gradBias == 1).all() and not numpy.shares_memory(flat2, got["grad"])
    model.getParameters()  # the loaded model re-flattens as usual
    assert (model[2].weight == 3).all()


def test_tied_views_without_the_flat_vector(tmp_path):
    a = nn.Linear(2, 2)
    net = nn.Sequential(a, nn.Linear(2, 2).share(a, "weight", "gradWeight"))
    net.getParameters()
    model = round_trip(tmp_path, net)
    assert model[1].weight is model[0].weight
    numpy.testing.assert_array_equal(model[0].weight, a.weight)


def test_overlapping_strided_views(tmp_path):
    base = numpy.arange(24.0)
    views = [base[::2], base[1:5], base.reshape(4, 6).T, base[::-3], base[20:]]
    got = round_trip(tmp_path, views)
    for v, g in zip(views, got):
        numpy.testing.assert_array_equal(g, v)
    got[0][:] = -1  # every even element: seen through the other views too
    assert (got[2][0] == -1).all() and got[1].tolist() == [1, -1, 3, -1]
    assert numpy.shares_memory(got[3], got[4])


def test_a_module_that_refers_to_itself(tmp_path):
    m = nn.Tanh()
    m.me = m
    other = round_trip(tmp_path, m)
    assert other.me is other


def test_failing_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    nn.save(path, {"step": 1})

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(h5py.Group, "create_dataset", broken)
    with pytest.raises(OSError, match="disk full"):
        nn.save(path, {"step": 2, "w": numpy.zeros(3)})
    assert nn.load(path) == {"step": 1}
    assert os.listdir(tmp_path) == ["model.h5"]  # the temporary file is gone


def test_unsavable_value_is_an_error_before_writing(tmp_path):
    path = tmp_path / "model.h5"
    nn.save(path, [1])
    m = nn.Tanh()
    m.fn = len
    with pytest.raises(TypeError, match=r"obj\['model'\]\.fn is a builtin_function_or_method"):
        nn.save(path, {"model": m})
    assert nn.load(path) == [1] and os.listdir(tmp_path) == ["model.h5"]


def test_dict_keys_must_be_strings(tmp_path):
    with pytest.raises(TypeError, match="keys must be strings"):
        nn.save(tmp_path / "k.h5", {1: 2})


def test_arrays_must_be_numeric(tmp_path):
    with pytest.raises(TypeError, match="dtype <U1"):
        nn.save(tmp_path / "s.h5", numpy.array(["a"]))


def test_local_classes_cannot_be_saved(tmp_path):
    class Local(nn.Tanh):
        pass
    with pytest.raises(TypeError, match="cannot be found again"):
        nn.save(tmp_path / "l.h5", Local())


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        nn.load("/nonexistent/model.h5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "model.h5"
    path.write_text("not a model")
    with pytest.raises(ValueError, match=f"{path} is not an HDF5 file"):
        nn.load(path)


def test_hdf5_but_not_nnlite(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = numpy.zeros(3)
    with pytest.raises(ValueError, match=f"{path}: not an nnlite file"):
        nn.load(path)


def test_newer_format_version(tmp_path):
    path = tmp_path / "new.h5"
    nn.save(path, 1)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = serialization.FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=f"format version {serialization.FORMAT_VERSION + 1} is not supported"):
        nn.load(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.h5"
    nn.save(path, mlp())
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=f"{path} is damaged or truncated"):
        nn.load(path)


@pytest.mark.parametrize("module, qualname, message", [
    ("os", "system", "os.system is not an nnlite Module or Criterion"),
    ("nnlite.activations", "NoSuchModule", "NoSuchModule cannot be found"),
])
def test_only_module_classes_are_created(tmp_path, module, qualname, message):
    path = tmp_path / "evil.h5"
    nn.save(path, nn.Tanh())
    with h5py.File(path, "r+") as f:
        f["obj"].attrs["module"] = module
        f["obj"].attrs["qualname"] = qualname
    with pytest.raises(ValueError, match=message):
        nn.load(path)


def test_view_outside_its_block_is_refused(tmp_path):
    path = tmp_path / "view.h5"
    base = numpy.arange(4.0)
    nn.save(path, [base[:3], base[1:]])
    with h5py.File(path, "r+") as f:
        f["obj/1"].attrs["view"] = json.dumps({"offset": 1, "shape": [9], "strides": [1]})
    with pytest.raises(ValueError, match="outside its block"):
        nn.load(path)


def _flip_one_byte_of(path, dataset):
    """Flip one byte inside the stored data of ``dataset`` (found by its offset in the file)."""
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        offset = ds.id.get_offset() if ds.chunks is None else ds.id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 5] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_parameter_data_raises_on_load(tmp_path):
    path = tmp_path / "m.h5"
    m = nn.Linear(30, 20)
    nn.save(path, m)
    with h5py.File(path, "r") as f:
        assert f["obj/weight"].fletcher32
    _flip_one_byte_of(path, "obj/weight")
    with pytest.raises(ValueError, match=f"{path} is damaged or truncated"):
        nn.load(path)


def test_scalars_and_0d_arrays_round_trip_with_checksums(tmp_path):
    path = tmp_path / "s.h5"
    nn.save(path, {"a": numpy.float32(1.5), "b": numpy.array(2.0), "c": numpy.zeros((0, 3))})
    back = nn.load(path)
    assert type(back["a"]) is numpy.float32 and back["a"] == 1.5
    assert isinstance(back["b"], numpy.ndarray) and back["b"].shape == () and back["b"] == 2.0
    assert back["c"].shape == (0, 3)


def test_saving_without_gradients_halves_the_data_and_loads_zero_gradients(tmp_path):
    m = mlp()
    params, grads = m.getParameters()
    grads.fill(3.0)
    nn.save(tmp_path / "with.h5", m)
    nn.save(tmp_path / "without.h5", m, gradients=False)
    back = nn.load(tmp_path / "without.h5")
    for (p, g), (q, h) in zip(zip(*m.parameters()), zip(*back.parameters())):
        numpy.testing.assert_array_equal(p, q)
        assert h.shape == g.shape and not h.any()
    with h5py.File(tmp_path / "without.h5", "r") as f:
        stored = []
        f.visititems(lambda name, o: stored.append(o.size) if isinstance(o, h5py.Dataset) else None)
    assert sum(stored) == params.size


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    import subprocess
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".m.h5.{dead.pid}.0123456789ab.tmp"
    live = tmp_path / f".m.h5.{os.getppid()}.0123456789ab.tmp"
    other = tmp_path / f".n.h5.{dead.pid}.0123456789ab.tmp"
    for f in (stale, live, other):
        f.write_bytes(b"x")
    nn.save(tmp_path / "m.h5", nn.Linear(2, 2))
    assert not stale.exists() and live.exists() and other.exists()
