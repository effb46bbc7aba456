"""nnlite.visual: the Middlebury flow colour code, PNG writing, image strips."""
import struct
import zlib

import numpy
import pytest

from nnlite import visual
from tests.helpers import host


def decode_png(path):
    """A minimal PNG reader for what write_png writes: 8-bit gray or RGB, filter type 0."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, tag
        chunks[tag] = chunks.get(tag, b"") + body
        pos += 12 + n
    assert b"IEND" in chunks
    w, h, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and interlace == 0
    channels = {0: 1, 2: 3}[color_type]
    raw = numpy.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=numpy.uint8)
    rows = raw.reshape(h, 1 + w * channels)
    assert not rows[:, 0].any()  # filter type 0 on every row: the samples follow as they are
    pixels = rows[:, 1:].reshape(h, w, channels)
    return pixels[..., 0] if channels == 1 else pixels


# -------------------------------------------------------------- colour wheel
def test_color_wheel_has_the_middlebury_ramps():
    wheel = visual.color_wheel(numpy)
    assert wheel.shape == (55, 3)
    numpy.testing.assert_array_equal(wheel[0], [255, 0, 0])     # red
    numpy.testing.assert_array_equal(wheel[15], [255, 255, 0])  # yellow, after RY = 15
    numpy.testing.assert_array_equal(wheel[21], [0, 255, 0])    # green, after YG = 6
    numpy.testing.assert_array_equal(wheel[25], [0, 255, 255])  # cyan, after GC = 4
    numpy.testing.assert_array_equal(wheel[36], [0, 0, 255])    # blue, after CB = 11
    numpy.testing.assert_array_equal(wheel[49], [255, 0, 255])  # magenta, after BM = 13
    numpy.testing.assert_array_equal(wheel[54], [255, 0, 255 - numpy.floor(5 * 255 / 6)])


def _one_vector(xp, dy, dx):
    """A 1x2 flow: the vector (dy, dx) next to a zero vector."""
    f = numpy.zeros((2, 1, 2))
    f[:, 0, 0] = dy, dx
    return xp.asarray(f)


@pytest.mark.parametrize("dy, dx, rgb", [
    (0.0, 1.0, [255, 0, 0]),       # right: red (wheel[0])
    (1.0, 0.0, [255, 229, 0]),     # down: yellow-orange (between wheel[13] and wheel[14])
    (0.0, -1.0, [0, 209, 255]),    # left: wheel[27], cyan-blue
    (-1.0, 0.0, [88, 0, 255]),     # up: blue-violet (between wheel[40] and wheel[41])
])
def test_flow_to_color_on_known_directions(xp, dy, dx, rgb):
    img = visual.flow_to_color(_one_vector(xp, 3 * dy, 3 * dx))
    assert isinstance(img, numpy.ndarray) and img.dtype == numpy.uint8 and img.shape == (1, 2, 3)
    numpy.testing.assert_array_equal(img[0, 0], rgb)
    numpy.testing.assert_array_equal(img[0, 1], [255, 255, 255])  # zero flow is white


def test_flow_to_color_saturation_follows_magnitude(xp):
    f = numpy.zeros((2, 1, 3))
    f[1, 0] = [2.0, 1.0, 4.0]  # rightward, magnitudes 1/2, 1/4 and 1 of the largest
    img = visual.flow_to_color(xp.asarray(f))
    numpy.testing.assert_array_equal(img[0, :, 0], [255, 255, 255])
    numpy.testing.assert_array_equal(img[0, :, 1], [127, 191, 0])  # floor(255 (1 - r))
    over = visual.flow_to_color(xp.asarray(f), max_magnitude=2.0)  # beyond 1: 3/4 of full colour
    numpy.testing.assert_array_equal(over[0, 2], [191, 0, 0])


@pytest.mark.parametrize("flow, error, match", [
    (numpy.zeros((3, 2, 2)), ValueError, "channel count"),
    (numpy.zeros((2, 2)), ValueError, r"\(2, h, w\)"),
    (numpy.full((2, 2, 2), numpy.nan), ValueError, "NaN"),
    (numpy.zeros((2, 2, 2), dtype=numpy.int64), TypeError, "floating"),
])
def test_flow_to_color_rejects_bad_flow(flow, error, match):
    with pytest.raises(error, match=match):
        visual.flow_to_color(flow)


# ---------------------------------------------------------------------- PNG
def test_write_png_round_trips_gray_and_rgb(tmp_path, rng):
    gray = rng.integers(0, 256, (5, 7), dtype=numpy.uint8)
    rgb = rng.integers(0, 256, (4, 3, 3), dtype=numpy.uint8)
    for image in (gray, rgb):
        path = str(tmp_path / "x.png")
        assert visual.write_png(path, image) == path
        numpy.testing.assert_array_equal(decode_png(path), image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no temporary left behind


def test_write_png_takes_floats_in_unit_range(tmp_path, xp):
    path = str(tmp_path / "f.png")
    visual.write_png(path, xp.asarray([[0.0, 0.5, 1.0]]))
    numpy.testing.assert_array_equal(decode_png(path), [[0, 128, 255]])


@pytest.mark.parametrize("image, error, match", [
    (numpy.array([[1.5]]), ValueError, r"\[0, 1\]"),
    (numpy.array([[numpy.nan]]), ValueError, r"\[0, 1\]"),
    (numpy.zeros((2, 2), dtype=numpy.int32), TypeError, "uint8"),
    (numpy.zeros((2, 2, 4), dtype=numpy.uint8), ValueError, r"\(h, w, 3\)"),
    ([[0, 1]], TypeError, "array"),
])
def test_write_png_rejects_bad_images(tmp_path, image, error, match):
    with pytest.raises(error, match=match):
        visual.write_png(str(tmp_path / "bad.png"), image)
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------- image strips
def test_image_strip_tiles_with_separators(xp):
    a = xp.zeros((2, 3))                                    # black, float gray
    b = xp.asarray(numpy.full((2, 2, 3), 7, numpy.uint8))   # RGB
    c = xp.ones((1, 1))                                     # smaller picture, white
    strip = visual.image_strip([[a, b], [c]], separator=100)
    assert strip.dtype == numpy.uint8 and strip.shape == (2 + 1 + 1, 3 + 1 + 2, 3)
    s = host(strip)
    assert (s[:2, :3] == 0).all() and (s[:2, 4:] == 7).all()
    assert (s[:, 3] == 100).all() and (s[2] == 100).all()   # the separators
    assert (s[3, 0] == 255).all() and (s[3, 1:] == 100).all()  # short row padded with the separator


def test_image_strip_rejects_empty_rows():
    with pytest.raises(ValueError, match="non-empty"):
        visual.image_strip([[]])
