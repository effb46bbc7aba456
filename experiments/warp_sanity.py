"""The paper's sampler sanity check (section 5, Figure 2): warp a frame with its true flow.

Patraucean et al. isolated the grid generator and the sampler, warped Sintel
frames with the ground-truth optical flow and measured a mean per-pixel error
of 0.004 against the true next frame (pixel values in [0, 1]). Sintel cannot be
shipped here, so this check makes its own exact ground truth:

* a smooth continuous picture ``I(y, x)`` (two Gaussian blobs on a sinusoidal
  texture, values in [0, 1]) gives the current frame ``F[i, j] = I(i, j)``;
* a smooth flow ``d(y, x)`` in pixels (translation, rotation, zoom or a
  sub-pixel sinusoidal field) gives the next frame by *exact* resampling of the
  same continuous picture, ``N[i, j] = I(i + dy(i, j), j + dx(i, j))``: output
  pixel (i, j) shows what was at its source point, the convention of the grid
  generator (paper, equation (3));
* ``GridGenerator`` + ``BilinearSampler`` warp F with the flow (converted to
  normalised units) and the result is compared with N.

The error has two sources: bilinear interpolation of a smooth picture (small),
and source points outside the frame, where the sampler reads 0 while the
continuous picture goes on (the paper's "artefacts near the boundaries"). Both
the mean over all pixels and the mean over the pixels whose source lies inside
the frame are reported.

Run ``python -m experiments.warp_sanity [--size 64] [--cuda] [--png strip.png]``.
"""
import argparse
import math

import numpy

import nnlite as nn
from nnlite import visual
from nnlite.flow import normalise_flow

FLOWS = ("translation", "subpixel_field", "rotation", "zoom")


def smooth_picture(y, x, size):
    """The continuous test picture at points (y, x) (pixel units), values in [0, 1].

    0.5 plus a sinusoidal texture of amplitude 0.2 plus a bright and a dark
    Gaussian blob of amplitude 0.3 that barely overlap: 0.5 +- 0.2 +- 0.3 stays
    in [0, 1].
    """
    s = size / 64
    texture = 0.2 * numpy.sin(2 * math.pi * x / (17 * s) + 1) * numpy.sin(2 * math.pi * y / (23 * s))
    bright = numpy.exp(-((y - 22 * s) ** 2 + (x - 24 * s) ** 2) / (2 * (7 * s) ** 2))
    dark = numpy.exp(-((y - 42 * s) ** 2 + (x - 40 * s) ** 2) / (2 * (6 * s) ** 2))
    return 0.5 + texture + 0.3 * (bright - dark)


def true_flow(name, size):
    """The displacement (dy, dx) in pixels, two (size, size) arrays, for flow ``name``."""
    y, x = numpy.mgrid[0:size, 0:size].astype(numpy.float64)
    c = (size - 1) / 2
    if name == "translation":  # sub-pixel along both axes
        return numpy.full_like(y, 0.4), numpy.full_like(x, -0.7)
    if name == "subpixel_field":  # a smooth field, |d| <= 0.6 px everywhere
        return (0.5 * numpy.sin(2 * math.pi * x / size),
                0.6 * numpy.cos(2 * math.pi * y / size))
    if name == "rotation":  # 3 degrees about the centre: up to 2.4 px at the corners
        t = math.radians(3)
        return ((y - c) * (math.cos(t) - 1) + (x - c) * math.sin(t),
                -(y - c) * math.sin(t) + (x - c) * (math.cos(t) - 1))
    if name == "zoom":  # magnify by 5% about the centre: up to 1.5 px at the borders
        k = 1 / 1.05 - 1
        return (y - c) * k, (x - c) * k
    raise ValueError(f"warp_sanity: unknown flow {name!r}; expected one of {FLOWS}")


def warp_error(name, size=64, device="cpu", dtype="float32"):
    """Warp the test frame with flow ``name`` and compare it with the exact next frame.

    Returns a dict: ``all`` and ``inside`` (mean absolute per-pixel error over all
    pixels and over those whose source point lies in the frame), and the pictures
    ``frame``, ``flow`` (pixels, (2, size, size)), ``truth`` and ``warped`` as
    float64 host arrays.
    """
    y, x = numpy.mgrid[0:size, 0:size].astype(numpy.float64)
    dy, dx = true_flow(name, size)
    frame = smooth_picture(y, x, size)
    truth = smooth_picture(y + dy, x + dx, size)
    flow = numpy.stack([dy, dx])
    grid = nn.GridGenerator(size, size).forward(
        nn.to_device(normalise_flow(flow, size, size).astype(dtype), device))
    warped = nn.BilinearSampler().forward(
        [nn.to_device(frame[None].astype(dtype), device), grid])
    warped = nn.to_numpy(warped)[0].astype(numpy.float64)
    err = numpy.abs(warped - truth)
    inside = (y + dy >= 0) & (y + dy <= size - 1) & (x + dx >= 0) & (x + dx <= size - 1)
    return {"all": float(err.mean()), "inside": float(err[inside].mean()),
            "frame": frame, "flow": flow, "truth": truth, "warped": warped}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="frame height and width")
    parser.add_argument("--cuda", action="store_true", help="run the sampler on the GPU (CuPy)")
    parser.add_argument("--png", help="write frame | flow | true next | warped | error, one row a flow")
    args = parser.parse_args(argv)
    device = "cuda" if args.cuda else "cpu"
    print(f"warp sanity check, {args.size}x{args.size} frames on {device} "
          f"(paper, Sintel: 0.004 mean per-pixel error)")
    print(f"{'flow':<16}{'max |d| px':>12}{'error, all':>14}{'error, inside':>16}")
    rows = []
    for name in FLOWS:
        r = warp_error(name, args.size, device)
        biggest = float(numpy.sqrt((r["flow"] ** 2).sum(axis=0)).max())
        print(f"{name:<16}{biggest:>12.2f}{r['all']:>14.5f}{r['inside']:>16.5f}")
        err = numpy.abs(r["warped"] - r["truth"])
        rows.append([r["frame"], visual.flow_to_color(r["flow"]), r["truth"],
                     numpy.clip(r["warped"], 0, 1), err / max(err.max(), 1e-12)])
    if args.png:
        visual.write_png(args.png, visual.image_strip(rows))
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
