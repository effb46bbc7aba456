"""Pictures: optical flow in the Middlebury colour code, PNG files, image strips.

Works on NumPy and CuPy arrays (the math runs where the array lives; the result
comes back to the host as a NumPy ``uint8`` array). PNG files are written with
``zlib`` and ``struct`` only, so no imaging library is needed.
"""
import struct
import zlib

from .atomic import atomic_path
from .backend import get_xp, is_array, to_numpy
from .checks import check_array, check_finite, check_size

_WHO = "nnlite.visual"

# The Middlebury colour wheel (Baker et al. 2011): six hue ramps between the
# primary and secondary colours, with as many steps as the perceptual distance
# between them. Each ramp: (steps, channel held at 255, channel that ramps,
# ramp up from 0 (True) or down from 255 (False)); channels are R=0, G=1, B=2.
_WHEEL_RAMPS = (
    (15, 0, 1, True),    # red -> yellow
    (6, 1, 0, False),    # yellow -> green
    (4, 1, 2, True),     # green -> cyan
    (11, 2, 1, False),   # cyan -> blue
    (13, 2, 0, True),    # blue -> magenta
    (6, 0, 2, False),    # magenta -> red
)


def color_wheel(xp):
    """The 55 wheel colours, a (55, 3) float64 array of RGB values in [0, 255]."""
    ramps = []
    for steps, full, ramp, up in _WHEEL_RAMPS:
        r = xp.zeros((steps, 3))
        r[:, full] = 255
        level = xp.floor(255 * xp.arange(steps) / steps)
        r[:, ramp] = level if up else 255 - level
        ramps.append(r)
    return xp.concatenate(ramps)


def flow_to_color(flow, max_magnitude=None):
    """A flow field as a (h, w, 3) ``uint8`` RGB picture, in the Middlebury colour code.

    ``flow`` is (2, h, w) with channel 0 the **y** (downward) and channel 1 the
    **x** (rightward) displacement, nnlite's layout (``GridGenerator``'s input).
    The hue encodes the direction (right red, down yellow, left cyan, up
    blue-violet) and the saturation the magnitude divided by ``max_magnitude``
    (default: the largest magnitude in ``flow``, so one picture uses the full
    range; pass a value to compare pictures on one scale). Zero flow is white;
    magnitudes beyond ``max_magnitude`` are shown at full colour darkened by 1/4.

    Following the reference code (flowToColor / computeColor): with
    ``u, v = x / max_magnitude, y / max_magnitude``, ``r = sqrt(u^2 + v^2)``, the
    angle ``a = atan2(-v, -u) / pi`` in [-1, 1] indexes the wheel at
    ``(a + 1)/2 * 54``, interpolating linearly between the two nearest colours,
    then each channel becomes ``1 - r (1 - col)`` (r <= 1) or ``0.75 col`` (r > 1)
    and is written as ``floor(255 col)``.
    """
    check_array(_WHO + ".flow_to_color", flow, (3,), "flow", layout="(2, h, w) ordered (y, x)")
    check_size(_WHO + ".flow_to_color", flow.shape[0], 2, "the flow's channel count")
    check_finite(_WHO + ".flow_to_color", flow, "flow")
    xp = get_xp(flow)
    v, u = flow[0].astype("float64"), flow[1].astype("float64")
    scale = float(xp.sqrt(u * u + v * v).max()) if max_magnitude is None else float(max_magnitude)
    if scale > 0:
        u, v = u / scale, v / scale
    rad = xp.sqrt(u * u + v * v)
    wheel = color_wheel(xp) / 255
    n = wheel.shape[0]
    fk = (xp.arctan2(-v, -u) / xp.pi + 1) / 2 * (n - 1)
    k0 = xp.floor(fk).astype(xp.int64)
    f = (fk - k0)[..., None]
    k1 = (k0 + 1) % n
    col = (1 - f) * wheel[k0] + f * wheel[k1]
    r = rad[..., None]
    col = xp.where(r <= 1, 1 - r * (1 - col), 0.75 * col)
    return to_numpy(xp.floor(255 * col).astype(xp.uint8))


def _to_uint8(image, who):
    """A host ``uint8`` copy of a (h, w) or (h, w, 3) picture given as uint8 or floats in [0, 1]."""
    if not is_array(image):
        raise TypeError(f"{who}: image must be a NumPy or CuPy array, got {type(image).__name__}")
    a = to_numpy(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3) or 0 in a.shape:
        raise ValueError(f"{who}: image must be gray (h, w) or RGB (h, w, 3), got shape {a.shape}")
    if a.dtype == "uint8":
        return a
    if a.dtype.kind != "f":
        raise TypeError(f"{who}: image must be uint8 or floating point in [0, 1], got {a.dtype}")
    if not ((a >= 0).all() and (a <= 1).all()):  # also catches NaN
        raise ValueError(f"{who}: a floating-point image must lie in [0, 1], got values in "
                         f"[{a.min()}, {a.max()}]")
    return (a * 255 + 0.5).astype("uint8")


def _png_chunk(tag, data):
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def write_png(path, image):
    """Write a gray (h, w) or RGB (h, w, 3) picture (uint8, or floats in [0, 1]) as a PNG.

    8 bits per channel, no interlacing, every row with filter type 0 (none).
    The file is written next to ``path`` under a temporary name and renamed, so a
    reader never sees half a file.
    """
    a = _to_uint8(image, _WHO + ".write_png")
    xp = get_xp(a)
    h, w = a.shape[:2]
    color_type = 0 if a.ndim == 2 else 2  # PNG colour types: 0 gray, 2 RGB
    # each scanline is its filter-type byte (0) followed by the row's samples
    raw = xp.concatenate([xp.zeros((h, 1), dtype="uint8"), a.reshape(h, -1)], axis=1)
    png = (b"\x89PNG\r\n\x1a\n"
           + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
           + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
           + _png_chunk(b"IEND", b""))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(png)
    return path


def image_strip(rows, separator=255):
    """Tile pictures into one RGB ``uint8`` image: ``rows`` is a list of rows, each a
    list of pictures (gray (h, w) or RGB (h, w, 3); uint8 or floats in [0, 1]).

    Pictures are placed left to right, rows top to bottom, with 1-pixel lines of
    gray level ``separator`` between them (also filling the space a smaller
    picture leaves in its row). Typical use: one row of input frames, one of
    predictions, one of ``flow_to_color`` pictures.
    """
    who = _WHO + ".image_strip"
    tiles = [[_to_uint8(p, who) for p in row] for row in rows]
    if not tiles or not all(tiles):
        raise ValueError(f"{who}: expected a non-empty list of non-empty rows of pictures")
    xp = get_xp(tiles[0][0])
    heights = [max(t.shape[0] for t in row) for row in tiles]
    widths = [sum(t.shape[1] for t in row) + len(row) - 1 for row in tiles]
    canvas = xp.full((sum(heights) + len(tiles) - 1, max(widths), 3), separator, dtype="uint8")
    top = 0
    for row, height in zip(tiles, heights):
        left = 0
        for t in row:
            h, w = t.shape[:2]
            canvas[top:top + h, left:left + w] = t if t.ndim == 3 else t[..., None]
            left += w + 1
        top += height + 1
    return canvas
