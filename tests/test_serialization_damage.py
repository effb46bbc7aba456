"""nnlite.load on damaged files: every failure is a ValueError that names the path."""
import h5py
import numpy
import pytest

import nnlite as nn


def saved(tmp_path):
    path = str(tmp_path / "m.h5")
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    nn.save(path, {"model": model, "pair": (numpy.arange(3.0), 2), "flat": model.getParameters()[0]})
    return path


def damage(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def load_fails(path):
    with pytest.raises(ValueError, match="nnlite.load: " + path) as e:
        nn.load(path)
    return str(e.value)


def obj_group(f):
    return f["obj"]


@pytest.mark.parametrize("edit, message", [
    (lambda f: f["obj"].attrs.__setitem__("keys", "[1, 2]"), "damaged"),       # was AttributeError
    (lambda f: f["obj"].attrs.__setitem__("keys", "[[1]]"), "damaged"),        # was TypeError
    (lambda f: f["obj"].attrs.__setitem__("keys", "{no json"), "Expecting"),
    (lambda f: f["obj/model"].attrs.__setitem__("module", 7), "damaged"),
    (lambda f: f["obj/model"].attrs.__setitem__("kind", "banana"), "unknown kind"),
    (lambda f: f.attrs.__setitem__("format_version", "two"), ""),
])
def test_damaged_attributes_are_value_errors(tmp_path, edit, message):
    path = saved(tmp_path)
    damage(path, edit)
    assert message in load_fails(path)


def test_a_tuple_that_contains_itself_is_a_value_error_not_a_recursion_error(tmp_path):
    path = saved(tmp_path)
    assert isinstance(nn.load(path)["pair"], tuple)

    def loop(f):
        pair = f["obj/pair"]
        del pair["0"]
        pair["0"] = pair  # a hard link to itself
    damage(path, loop)
    assert "contains itself" in load_fails(path)


def test_flipped_bytes_never_escape_as_another_exception(tmp_path):
    path = saved(tmp_path)
    with open(path, "rb") as f:
        data = f.read()
    rng = numpy.random.default_rng(0)
    failures = 0
    for k, pos in enumerate(rng.choice(len(data), 120, replace=False)):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        p = str(tmp_path / f"bad{k}.h5")
        with open(p, "wb") as f:
            f.write(bytes(bad))
        try:
            nn.load(p)
        except ValueError as e:
            assert p in str(e)
            failures += 1
    assert failures > 0  # some flips hit structure or checksummed data
