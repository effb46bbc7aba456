"""How right a predicted flow is, against the generator's true motion (``MovingMNIST.motion``).

Fields are (B, 2, h, w), channel 0 = y, 1 = x, in pixels of the flow's resolution, in the
backward (sampling) convention of ``GridGenerator``; masks are (B, 1, h, w) 0/1, 1 where the
true flow is defined. Every metric is a per-sequence mean over that sequence's masked
pixels, summed over the batch as a 0-d array in the input's namespace (the caller divides
by the number of sequences), so nothing here reads the device. A sequence with an empty
mask (its digits cover each other entirely) contributes 0.

* Endpoint error (EPE): ``|f - t|``, the Euclidean distance between the two displacements,
  in pixels.
* Angular error (AE) of Barron, Fleet and Beauchemin (1994), in degrees: the angle between
  the space-time vectors ``(u, v, 1)`` and ``(u_t, v_t, 1)``. Unlike the angle between the
  2-D directions it is defined for zero vectors and weighs small displacements less: it is
  ``atan(|t|)`` for a zero flow, ``45`` degrees for a zero flow against a 1-pixel motion.
  Computed as ``atan2(|a x b|, a . b)``, which is exact for equal vectors (``arccos`` of the
  normalised dot product loses about 0.02 degrees to float32 rounding there).
"""
import math

import nnlite as nn


def masked_mean(values, mask):
    """Per-sequence mean of ``values`` (B, ...) over the 0/1 ``mask`` (B, ...): (B,).

    An empty mask gives 0 (its sum is divided by 1).
    """
    xp = nn.get_xp(values)
    axes = tuple(range(1, values.ndim))
    return (values * mask).sum(axis=axes) / xp.maximum(mask.sum(axis=axes), 1)


def endpoint_error(flow, truth):
    """Per-pixel endpoint error ``|flow - truth|`` (B, h, w) of two (B, 2, h, w) fields."""
    xp = nn.get_xp(flow)
    return xp.sqrt(((flow - truth) ** 2).sum(axis=1))


def angular_error(flow, truth):
    """Per-pixel angle in degrees (B, h, w) between ``(u, v, 1)`` and ``(u_t, v_t, 1)`` (Barron et al.).

    With ``a = (fy, fx, 1)``, ``b = (ty, tx, 1)``: ``a . b = fy ty + fx tx + 1`` and
    ``a x b = (fx - tx, ty - fy, fy tx - fx ty)``; the angle is ``atan2(|a x b|, a . b)``.
    """
    xp = nn.get_xp(flow)
    fy, fx, ty, tx = flow[:, 0], flow[:, 1], truth[:, 0], truth[:, 1]
    dot = fy * ty + fx * tx + 1
    cross = xp.sqrt((fx - tx) ** 2 + (ty - fy) ** 2 + (fy * tx - fx * ty) ** 2)
    return xp.arctan2(cross, dot) * (180 / math.pi)


def flow_sums(flow, truth, mask):
    """Sums over sequences of the per-sequence mean EPE and AE of ``flow`` and of a zero flow.

    Returns 0-d arrays ``epe``, ``ae`` (the flow) and ``zero_epe``, ``zero_ae`` (the zero
    flow: its EPE is the mean true speed, its AE the mean ``atan(|t|)``).
    """
    xp = nn.get_xp(flow)
    mask = mask[:, 0]
    sums = {}
    for prefix, f in (("", flow), ("zero_", xp.zeros_like(truth))):
        sums[prefix + "epe"] = masked_mean(endpoint_error(f, truth), mask).sum()
        sums[prefix + "ae"] = masked_mean(angular_error(f, truth), mask).sum()
    return sums
