"""Convolution as GEMMs (Torch's SpatialConvolutionMM), shared by ``SpatialConvolution``
and the convolutional LSTMs.

Notation: input x (B, C, H, W), weight W (F, C, kH, kW), stride (dH, dW), zero
padding (padH, padW), xpad the padded input (B, C, Hp, Wp), output y (B, F, Ho, Wo)
with ``Ho = (Hp - kH) // dH + 1``; ``L = B Ho Wo``.

Five exact ways to lay the work out as GEMMs; ``conv2d`` and ``conv2d_backward`` pick
per call from the shapes ("Choosing a path" below):

**Input side (im2col)**, the general path. Columns in channel-major layout,
``cols[(c, i, j), (b, p, q)] = xpad[b, c, p dH + i, q dW + j]`` (K = C kH kW rows,
L columns), so every product is one GEMM with no transposed copies:

* forward          ``y = W2 @ cols + bias``                     (F, L), W2 = W as (F, K)
* input gradient   ``gcols = W2^T @ gy``, then col2im adds each column back to the
                   pixels it was read from (overlapping windows read a pixel several times)
* weight gradient  ``gW2 += gy @ cols^T``;  ``gbias += sum over L of gy``

**Output side (shift-add) forward**, for stride 1, made for far fewer output than
input planes (the paper's 64 -> 2 15x15 flow regressor, the 16 -> 1 decoder). The
im2col buffer would have C kH kW rows; this path's buffer has F kH kW. With xpc = xpad
as (C, B Hp Wp) and Wr[(f, i, j), c] = W[f, c, i, j], one GEMM ``Z = Wr @ xpc`` gives
kH kW partial maps, ``Z[(f, i, j), (b, r, s)] = sum_c W[f, c, i, j] xpad[b, c, r, s]``,
and ``y[f, b, p, q] = sum_{i, j} Z[(f, i, j), (b, p + i, q + j)]`` is one reduction over
the kH kW shifted views of Z (an offset further is one row or one column further on).
Multiplying the padded frame does (Hp Wp) / (H W) times the counted multiply-adds
(1.2 for the 7x7 decoder at 64x64, 2.1 for the 15x15 flow regressor at 32x32, which
therefore takes row columns), and buys a sum with no loop over offsets, so the host's
chunks can be sized to the cache like every other path's. The earlier way, a scatter of
Z's slices with one NumPy call per offset over chunks of 8 frames, took 4.2 ms for the
decoder's forward at batch 16, this one 2.0 (``benchmarks/RESULTS.md``, tenth round).

**Gradient side backward**, for stride 1 and padding at most k - 1. At stride 1
the input gradient is itself a correlation: of gy, zero-padded by k - 1 - pad, with the
kernel flipped and its planes swapped,
``dL/dx[b, c, u, v] = sum_{f, i', j'} W[f, c, kH-1-i', kW-1-j'] gypad[b, f, u + i', v + j']``.
So the columns of the *output gradient*, ``G = im2col(gy)`` with that padding
(F kH kW rows, B H W columns), serve both gradients, with xc as above and
Wf[(f, i', j'), c] = W[f, c, kH-1-i', kW-1-j']:

* input gradient   ``gxc = Wf^T @ G``: one GEMM whose inner dimension is F kH kW, and
                   no col2im;
* weight gradient  ``gWf += G @ xc^T``, read back with the offsets flipped.

Its buffer has F kH kW rows against the input side's C kH kW, and one copy replaces
the input side's two passes over the columns (im2col for the weight gradient, col2im
for the input gradient).

**Row columns**, for stride 1 in both directions (the backward also needs padding at
most k - 1). Copy only the kW shifts of each padded row,
``R[(c, j), (r, b, q)] = xpad[b, c, r, q + j]`` (C kW rows, Hp B Wo columns): a kW-fold
copy of the input where im2col's is kH kW-fold. With the kernel's rows stacked,
Wrow[(i, f), (c, j)] = W[f, c, i, j]:

* forward          ``Z = Wrow @ R`` (kH F rows): kH partial maps, one per kernel row;
                   ``y[f, b, p, q] = sum_i Z[(i, f), (p + i, b, q)]``, one reduction over
                   kH row-shifted views of Z (a row further is B Wo columns further on).
                   The padding rows of xpad are zero and so are their partial maps, so
                   the forward multiplies only the image's rows and zeroes Z's others
* input gradient   the stride-1 correlation of the gradient side (gy padded by
                   k - 1 - pad, the kernel flipped, its planes swapped), by this same forward
* weight gradient  ``dL/dW[f, c, i, j] = sum_{p, b, q} R[(c, j), (p + i, b, q)] gy[f, b, p, q]``:
                   kH GEMMs, one batched matmul, of the row-shifted views of R with gy
                   as ((p, b, q), F) (the transposed view of gy laid out as (F, (p, b, q))).
                   Each product is a long inner product (a few hundred outputs, tens of
                   thousands of terms each), which OpenBLAS runs faster with R's C kW rows
                   as its first operand than with gy's F rows: up to 2x for few planes,
                   with its AVX2 and its AVX-512 kernels alike (``benchmarks/RESULTS.md``,
                   seventh round)

**Fourier**, for stride 1 and padding at most k - 1 (fbcunn's SpatialConvolutionFFT did
the same for Torch7 on GPUs). A correlation is a product in frequency: with N = (H + padH,
W + padW) and the kernel placed circularly at (i - padH, j - padW) mod N, the circular
correlation of the unpadded frame with that kernel equals the padded correlation on every
output pixel (an offset that leaves the frame lands, mod N, on the zeros beyond it, never
on the frame: N >= H + pad). So, per frequency bin (u, v), with K, X, G the 2-D DFTs of
kernel, frames and gy (v <= Nw / 2: real planes have Hermitian spectra):

* forward          ``Y = conj(K) X``, (F, C) @ (C, B): one batched complex GEMM over the
                   bins, then the inverse DFT at the Ho x Wo output pixels
* input gradient   ``conj(dX) = K^T conj(G)``, the adjoint, inverted at the H x W pixels
* weight gradient  ``dK = conj(G) X^T`` summed over frames, inverted at the kernel's
                   kH x kW offsets only

Each 2-D DFT is two GEMMs with small DFT matrices (``_spectrum``, ``_planes``), not an
FFT: no FFT library, the same code on a device, and the transposed operands make the bins
come out first (and the pixels last, for the inverse) with no transposed copy. For the
paper's 64 -> 256 7x7 hidden map at 32x32 a frame's spectrum has 35 x 18 bins against
its 49 multiply-adds per pixel pair: 88 M real multiply-adds a frame, transforms included,
against the direct 822 M; the narrow GEMMs and the passes that combine the spectra take back part of that
(``FOURIER_SLOWDOWN``). In float32 it agrees with the direct sum to about 1e-6 relative.
The kernel's spectrum (83 MB for that map) grows with the frame, so the path applies
only while it holds at most ``FOURIER_KERNEL_ELEMENTS``; it is made once per call, or kept
in a caller's ``memo`` over the calls of one pass (a ConvLSTM's hidden map, ten steps). Its GEMMs are
few and large, so this path runs on all of OpenBLAS's threads rather than frames side by
side, and splits only its transforms' planes over the host's threads, in parts that stay in
cache; its spectra take chunks of frames within ``FOURIER_WORK_ELEMENTS``.

**Choosing a path.** Every path but the shift-add forward and the Fourier path does the
same multiply-adds, with GEMMs that run near the SGEMM rate; what separates them is the
memory their buffers move, so ``forward_path`` and ``backward_path`` count it, in elements
per frame, and take the least. The direct multiply-adds ``F C kH kW Ho Wo`` (per gradient
asked), each counted as ``1 / MULADDS_PER_ELEMENT`` of an element, are added to every
direct path, so that the Fourier path's count can stand against them: its transforms' and
per-bin products' multiply-adds, the spectra it writes and reads, and the kernel's
spectrum shared by the ``frames`` of the call, all times ``FOURIER_SLOWDOWN``. A gathering copy (im2col, row columns) counts 2 per element written (a strided
read, a write), each GEMM's pass over a buffer 1, a GEMM's output 1 and each
accumulating add 3 (two reads, one write). Forward: im2col ``3 C kH kW Ho Wo``; the
shift-add path ``4 C Hp Wp + 2 F kH kW Hp Wp`` (the padded copy of x filled,
gathered and read by the GEMM; Z written, then read once by the sum, whose few output
planes stay in cache), plus its extra multiply-adds ``F kH kW C (Hp Wp - H W)``, each
counted as ``1 / MULADDS_PER_ELEMENT`` of an element; row columns ``(3 C kW H + 4 kH F Hp) Wo`` (R gathered and read, Z
written and reduced). Backward: the input side ``(3 + 4) C kH kW Ho Wo`` (im2col for
dL/dW; gcols written, then added into the image for dL/dx), the gradient side
``(2 + 1 + 1) F kH kW H W`` (G gathered, read by each GEMM), row columns
``(2 + kH) (C kW Hp + F Ho) Wo`` for dL/dW (R and gy, laid out, are read by each of its
kH GEMMs) plus the forward's count on gy for dL/dx; each also counts the channel-major
copies of gy and x its GEMMs read, and a gradient that is not asked for drops its terms.
For a 1 -> 16 first layer, whose gy is 16 planes against R's 7 rows, that keeps the
weight gradient on im2col (41 ms against 60 for 160 frames at 64x64). On every 7x7
layer of the Table 1 models this picks the path that ``benchmarks/conv_paths.py``
measured fastest, or one within 20% of it (``benchmarks/RESULTS.md``, eleventh round):
the Fourier path for every ConvLSTM map and AE-Conv's 16 -> 64 and 64 -> 16 layers (the
64 -> 256 hidden map's forward 89 ms against 176 on im2col for 16 frames, its backward
206 against 329 on row columns; the 64 -> 64 input map's forward 167 against 374, 160
frames), row columns for AE-Conv's 10 -> 16 first layer at 64x64 (forward 10.0 ms against
11.7; backward 21.4 against 18.1), the shift-add and gradient-side paths for the 16 -> 1
decoder; the 64 -> 2 15x15 flow regressor's forward goes to the Fourier path (54 ms
against 84 on row columns, 160 frames).

**Sums over kernel offsets** (col2im) are
written two ways, chosen per backend by ``offset_loops(xp)``. On NumPy, a Python
loop over the kH kW offsets, each step a vectorised slice over batch, channels and
pixels: a NumPy call costs about a microsecond and a slice copy runs at memory
speed, faster than NumPy's ``add.at`` or a fancy-indexed gather. On a GPU each
slice would be a kernel launch costing 8-15 us of host time (49 to 225 per call,
thousands per training step), so there each sum is one scatter-add (``xp.add.at``
into a zeroed buffer), indexed by small broadcast index arrays
(``_window_index``, cached per geometry). The tests run both ways on both backends
and compare them.

**Work buffers.** Every path builds a buffer (the columns of x or of gy, or the
partial maps Z) far larger than input or output: 205 MB per step for the paper's 64 -> 256
7x7 hidden convolution at batch 16. The buffer comes from ``backend.scratch``, so
it is allocated once and reused, and a batch whose buffer would exceed
``WORK_ELEMENTS`` is processed in chunks of frames (one GEMM per chunk, written
straight into its columns of the output). Memory stays bounded whatever the batch,
and every chunk's GEMM is still thousands of columns wide. On the host the chunks are
sized to the cache: each thread's holds at most ``CACHE_ELEMENTS`` (1 MiB), which for
every 7x7 layer of the Table 1 models means one frame a chunk, so a GEMM reads columns
written just before, from cache, instead of streaming them from memory. That made
AE-Conv's step 0.096 -> 0.074 s and the 64 -> 64 ConvLSTM input map's backward 443 ->
387 ms (``benchmarks/RESULTS.md``, ninth round; an earlier round, whose GEMMs still
shared OpenBLAS's threads, had found smaller chunks slower). A device keeps the large
chunks, since there every chunk is more kernel launches.

**Frames side by side.** On the host, ``conv2d`` and ``conv2d_backward`` (on every path
but the Fourier path, which splits its planes instead) split the batch
into one contiguous range of frames per BLAS thread and run the ranges in threads
(``backend.host_parallel``), each with a one-thread BLAS and its own work buffer, the
weight and bias gradients of the ranges summed at the end. This is Torch7's
SpatialConvolutionMM, whose OpenMP loop runs the frames of a batch in parallel. NumPy
lets go of the GIL inside its copies, reductions and BLAS calls, so the im2col copies,
col2im sums and partial-map reductions, which NumPy runs on one core, run on every core,
and no GEMM waits on hand-offs between OpenBLAS's threads (``benchmarks/RESULTS.md``,
eighth round). The ranges share ``WORK_ELEMENTS`` between them, so memory does not grow
with the thread count; ``--threads 1`` (``backend.host_threads``) runs one range. On a
device a call is one range: the GPU already runs each kernel over the whole batch.

**Layouts.** Every GEMM reads and writes channel-major matrices, (C, B H W), while
modules exchange batch-major (B, C, H, W) arrays. ``conv2d`` and ``conv2d_backward``
therefore hand back a contiguous copy by default, and with ``channel_major=True`` a
(B, C, H, W) view of the channel-major memory instead; ``im2col`` and
``to_channel_major`` read such views in place. The convolutional LSTMs work in that
layout (their gates are elementwise, so any layout serves): for AE-ConvLSTM that removed
1.5 s of layout copies from a 13.1 s profiled step (``benchmarks/RESULTS.md``, fifth round).
"""
import functools
import math

from .backend import get_xp, host_parallel, host_ranges, host_xp, scratch

#: Elements of the largest work buffer one convolution call uses (128 MiB in float32);
#: a batch that needs more is split into chunks of frames.
WORK_ELEMENTS = 1 << 25


#: On the host, the most work-buffer elements one thread's chunk of frames takes (1 MiB in
#: float32, one core's L2 cache on the machine measured); a larger frame is a chunk of its own.
CACHE_ELEMENTS = 1 << 18


#: None: loops on NumPy, index arrays on a device (``offset_loops``); True/False forces
#: one way everywhere (the tests compare the two).
OFFSET_LOOPS = None


def offset_loops(xp):
    """Whether sums over kernel offsets loop in Python (NumPy) or run as one indexed kernel."""
    return xp is host_xp if OFFSET_LOOPS is None else OFFSET_LOOPS


@functools.lru_cache(maxsize=64)
def _window_index(xp, C, B, kH, kW, P, Q, rows, cols):
    """Broadcast index arrays ``(c, b, r, s)`` that send each element (c, i, j, b, p, q)
    of a window array (C, kH, kW, B, P, Q) to pixel (c, b, r[i, p], s[j, q]) of a plane
    array (C, B, ., .), with ``r[i, p] = r0 + ri i + rp p`` for ``rows = (r0, ri, rp)``
    and likewise ``s`` for ``cols``. Shapes (C,1,1,1,1,1), (1,1,1,B,1,1),
    (1,kH,1,1,P,1), (1,1,kW,1,1,Q): a few hundred integers, cached per geometry."""
    def axis(k, m, start, per_offset, per_pixel):
        return start + per_offset * xp.arange(k).reshape(k, 1) + per_pixel * xp.arange(m)

    c = xp.arange(C).reshape(C, 1, 1, 1, 1, 1)
    b = xp.arange(B).reshape(1, 1, 1, B, 1, 1)
    r = axis(kH, P, *rows).reshape(1, kH, 1, 1, P, 1)
    s = axis(kW, Q, *cols).reshape(1, 1, kW, 1, 1, Q)
    return c, b, r, s


def offset_window(i, j, dH, dW, Ho, Wo):
    """The (rows, cols) slices of the Ho x Wo pixels that window offset (i, j) meets at
    stride (dH, dW): rows i + dH p and columns j + dW q of the padded frame."""
    return slice(i, i + dH * (Ho - 1) + 1, dH), slice(j, j + dW * (Wo - 1) + 1, dW)


def out_size(n, k, stride, pad):
    """Output length of a convolution or pooling window sliding over n (floor mode)."""
    return (n + 2 * pad - k) // stride + 1


def pad2d(x, padH, padW):
    """Zero-pad the last two axes of a 4-D array (returns ``x`` itself when no padding)."""
    if not padH and not padW:
        return x
    xp = get_xp(x)
    B, C, H, W = x.shape
    out = xp.zeros((B, C, H + 2 * padH, W + 2 * padW), dtype=x.dtype)
    out[:, :, padH:padH + H, padW:padW + W] = x
    return out


def to_channel_major(a):
    """(B, C, H, W) -> (C, B H W): the layout in which a convolution is one GEMM (a view,
    no copy, when ``a`` is itself a view of channel-major memory: ``channel_major_view``)."""
    return a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1)


def channel_major_view(a):
    """(C, B, H, W) memory seen as (B, C, H, W): a view, no copy."""
    return a.transpose(1, 0, 2, 3)


def _batch_layout(a, channel_major):
    """For a result the GEMMs write as (C, B, H, W): the (B, C, H, W) array handed back, and
    the function ``fill(lo, hi)`` that lays out its frames [lo, hi). For a result not asked
    for (``a`` None) that array is None; with ``channel_major``, or where the view is
    already contiguous (one plane, or one frame), it is the view itself; in these cases
    ``fill`` does nothing. Else it is a new contiguous array, and each range of frames calls
    ``fill`` in its own thread right after computing them, so the layout copy runs on every
    core and reads what the range just wrote (one copy on one core after the call took 4 ms
    of AE-Conv's 0.105 s step, ``benchmarks/RESULTS.md``, tenth round)."""
    view = None if a is None else channel_major_view(a)
    if view is None or channel_major or view.flags.c_contiguous:
        return view, lambda lo, hi: None
    out = get_xp(a).empty(view.shape, dtype=a.dtype)

    def fill(lo, hi):
        out[lo:hi] = view[lo:hi]
    return out, fill


def batch_chunks(B, per_item, budget=None):
    """Split B frames into equal chunks whose work buffers hold at most ``budget`` elements
    (default ``WORK_ELEMENTS``; ``per_item`` elements per frame; a single frame is never
    split). Frames run side by side (``host_parallel``) share ``WORK_ELEMENTS`` between
    them, so memory stays bounded whatever the thread count."""
    most = max(1, (WORK_ELEMENTS if budget is None else budget) // per_item)  # frames a chunk
    n_chunks = max(1, math.ceil(B / most))
    size = max(1, math.ceil(B / n_chunks))  # as equal as that allows, never more than most
    return [(b, min(b + size, B)) for b in range(0, B, size)]


def im2col(x, kH, kW, dH, dW, padH, padW):
    """(B, C, H, W) -> (C kH kW, B Ho Wo) columns in a scratch buffer: one strided view, one copy.
    ``x`` may have any strides (a channel-major view is read in place)."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    xpd = pad2d(x, padH, padW)
    s0, s1, s2, s3 = xpd.strides
    windows = xp.lib.stride_tricks.as_strided(
        xpd, shape=(C, kH, kW, B, Ho, Wo), strides=(s1, s2, s3, s0, s2 * dH, s3 * dW))
    cols = scratch(xp, C * kH * kW * B * Ho * Wo, x.dtype).reshape(C * kH * kW, B * Ho * Wo)
    xp.copyto(cols.reshape(windows.shape), windows)
    return cols


def col2im(cols, B, C, H, W, kH, kW, dH, dW, padH, padW):
    """Adjoint of ``im2col``: (C kH kW, B Ho Wo) -> (C, B, H, W) (a view), summing overlaps."""
    xp = get_xp(cols)
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    c6 = cols.reshape(C, kH, kW, B, Ho, Wo)
    gpad = xp.zeros((C, B, H + 2 * padH, W + 2 * padW), dtype=cols.dtype)
    if offset_loops(xp):
        for i in range(kH):
            for j in range(kW):
                gpad[(Ellipsis,) + offset_window(i, j, dH, dW, Ho, Wo)] += c6[:, i, j]
    else:  # gpad[c, b, i + dH p, j + dW q] += cols[(c, i, j), (b, p, q)], one scatter-add
        xp.add.at(gpad, _window_index(xp, C, B, kH, kW, Ho, Wo, (0, 1, dH), (0, 1, dW)), c6)
    return gpad[:, :, padH:padH + H, padW:padW + W]


def row_columns(x, kW, padH, padW, out):
    """(B, C, H, W) -> (C kW, Hp B Wo) row columns, written into the flat buffer ``out``:
    the kW shifts of every padded row, ``R[(c, j), (r, b, q)] = xpad[b, c, r, q + j]``.
    One strided view, one copy, a kW-fold copy of the input where im2col's is kH kW-fold;
    ``x`` may have any strides."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    xpd = pad2d(x, padH, padW)
    Hp, Wo = xpd.shape[2], xpd.shape[3] - kW + 1
    s0, s1, s2, s3 = xpd.strides
    windows = xp.lib.stride_tricks.as_strided(xpd, shape=(C, kW, Hp, B, Wo), strides=(s1, s3, s2, s0, s3))
    R = out.reshape(C * kW, Hp * B * Wo)
    xp.copyto(R.reshape(windows.shape), windows)
    return R


def _rows_conv(x, weight, padH, padW, out, budget):
    """The stride-1 row-columns forward, written into ``out`` (F, B, Ho, Wo): with
    ``Wrow[(i, f), (c, j)] = W[f, c, i, j]``, one GEMM ``Z = Wrow @ R`` gives kH partial
    maps, ``Z[(i, f), (r, b, q)] = sum_{c, j} W[f, c, i, j] xpad[b, c, r, q + j]``, and
    ``y[f, b, p, q] = sum_i Z[(i, f), (p + i, b, q)]`` is one reduction over the kH
    row-shifted views of Z. Chunked over frames like the other paths, each chunk's work
    buffer at most ``budget`` elements."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho, Wo = out.shape[2:]
    Wrow = weight.transpose(2, 0, 1, 3).reshape(kH * F, C * kW)
    for b0, b1 in batch_chunks(B, (C * kW * H + kH * F * (H + 2 * padH)) * Wo, budget):
        n, m = H * (b1 - b0) * Wo, padH * (b1 - b0) * Wo  # R's columns; Z's padding rows, each side
        buf = scratch(xp, C * kW * n + kH * F * (n + 2 * m), x.dtype)  # R, then Z
        # the padding rows of xpad are zero, and so are their partial maps: R holds only the
        # image's rows (a GEMM 1 + 2 padH / H times smaller) and Z's padding rows are zeroed
        R = row_columns(x[b0:b1], kW, 0, padW, buf[:C * kW * n])
        Z = buf[C * kW * n:].reshape(kH * F, n + 2 * m)
        Z[:, :m] = 0
        Z[:, m + n:] = 0
        xp.matmul(Wrow, R, out=Z[:, m:m + n])
        sf, sc = Z.strides
        row = (b1 - b0) * Wo * sc  # one padded row further along Z's columns
        Zi = xp.lib.stride_tricks.as_strided(Z, shape=(kH, F, Ho, b1 - b0, Wo),
                                             strides=(F * sf + row, sf, row, Wo * sc, sc))
        Zi.sum(axis=0, out=out[:, b0:b1].transpose(0, 2, 1, 3))


def _shift_conv(x, weight, padH, padW, out, budget):
    """The stride-1 shift-add forward, written into ``out`` (F, B, Ho, Wo): with xpc the
    padded frames as (C, B Hp Wp) and ``Wr[(f, i, j), c] = W[f, c, i, j]``, one GEMM
    ``Z = Wr @ xpc`` gives kH kW partial maps, and ``y[f, b, p, q] = sum_{i, j}
    Z[(f, i, j), (b, p + i, q + j)]`` is one reduction over the kH kW shifted views of Z.
    Chunked over frames like the other paths, each chunk's work buffer at most ``budget``
    elements."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho, Wo = out.shape[2:]
    Hp, Wp = H + 2 * padH, W + 2 * padW
    Wr = _shifted_weight(weight)
    for b0, b1 in batch_chunks(B, (C + F * kH * kW) * Hp * Wp, budget):
        n = (b1 - b0) * Hp * Wp  # the chunk's padded pixels
        buf = scratch(xp, (C + F * kH * kW) * n, x.dtype)  # xpc, then Z
        xpc = buf[:C * n].reshape(C, b1 - b0, Hp, Wp)
        xpc.fill(0)
        xpc[:, :, padH:padH + H, padW:padW + W] = x[b0:b1].transpose(1, 0, 2, 3)
        Z = xp.matmul(Wr, xpc.reshape(C, n), out=buf[C * n:].reshape(F * kH * kW, n))
        sf, sc = Z.strides
        # offset (i, j) is kernel row i and column j of Wr, and i rows and j columns further along Z
        Zij = xp.lib.stride_tricks.as_strided(
            Z, shape=(kH, kW, F, b1 - b0, Ho, Wo),
            strides=(kW * sf + Wp * sc, sf + sc, kH * kW * sf, Hp * Wp * sc, Wp * sc, sc))
        Zij.sum(axis=(0, 1), out=out[:, b0:b1])


def _complex_dtype(dtype):
    """complex64 for float32 data, complex128 for float64 (the Jacobian tests)."""
    return "complex64" if dtype == "float32" else "complex128"


def _phases(xp, dtype, U, n, offset, N, sign):
    """``exp(sign 2 pi i u (t + offset) / N)`` for u < U, t < n, as (U, n) complex of the real
    ``dtype``'s precision. The exponent is reduced mod N in integers first, so the angle stays
    below 2 pi and float32 loses nothing to large arguments (nor makes a float64 array)."""
    k = (xp.arange(U).reshape(U, 1) * (xp.arange(n) + offset)) % N
    return xp.exp((1j * sign * 2 * math.pi / N) * k.astype(dtype))


@functools.lru_cache(maxsize=256)
def _dft_rows(xp, dtype, n, offset, N, sign, half):
    """The real matrix (2 U, n) whose rows are ``cos`` then ``sign sin`` of
    ``2 pi u (t + offset) / N`` for u < U (U = N // 2 + 1 with ``half``, else N) and t < n:
    the DFT of n samples placed at t + offset (mod N), as real and imaginary rows. Made once
    per geometry (and cached), like every DFT matrix here."""
    U = N // 2 + 1 if half else N
    e = _phases(xp, dtype, U, n, offset, N, sign).view(dtype).reshape(U, n, 2)
    return xp.concatenate([e[..., 0], e[..., 1]])


@functools.lru_cache(maxsize=256)
def _inverse_dft(xp, dtype, n, offset, N, sign):
    """(Eh, Ew) for ``_planes``: Eh (N, n) complex, ``exp(sign 2 pi i u (t + offset) / N) / N``;
    Ew (V, 2 n) real, V = N // 2 + 1, ``[c_v cos | -sign c_v sin](2 pi v (t + offset) / N) / N``
    with c_v = 2, but 1 for v = 0 and for v = N / 2 (N even): the halved spectrum's weights."""
    Eh = _phases(xp, dtype, N, n, offset, N, sign) / N
    V = N // 2 + 1
    c = xp.full((V, 1), 2 / N, dtype=dtype)
    c[0] = 1 / N
    if N % 2 == 0:
        c[V - 1] = 1 / N
    e = _phases(xp, dtype, V, n, offset, N, sign).view(dtype).reshape(V, n, 2)
    return Eh, xp.concatenate([c * e[..., 0], -c * e[..., 1]], axis=1)


#: On the host, the most elements of the Fourier path's transform intermediates one part of
#: its planes holds (``_spectrum``, ``_planes``): small enough to stay in cache, large enough
#: that each part's GEMMs are hundreds of columns wide.
FOURIER_PART_ELEMENTS = 1 << 18


def _plane_parts(xp, R0, per_plane):
    """``(ranges, per)``: the ranges of R0 that ``host_parallel`` runs side by side, and how
    many of R0's slices one part of a range takes (``per_plane`` elements each) within
    ``FOURIER_PART_ELEMENTS`` on the host; a device takes all of them at once."""
    ranges = host_ranges(xp, R0)
    if xp is not host_xp:
        return ranges, R0
    return ranges, max(1, FOURIER_PART_ELEMENTS // per_plane)


def _spectrum(a, offset, N, sign):
    """The 2-D DFTs of the real planes ``a`` (R0, R1, n, m), placed at (t + offset) mod N
    (offset and N per axis), ``S[u, v, r0, r1] = sum_{t, s} a[r0, r1, t, s]
    exp(sign 2 pi i (u (t + oh) / Nh + v (s + ow) / Nw))`` for v <= Nw / 2 (a real
    plane's spectrum is Hermitian): (Nh, Nw // 2 + 1, R0, R1), complex.

    Two real GEMMs, each with the planes as its transposed second operand, so the bins
    come out first with no transposed copy: along the columns ``T1 = Dw a^T`` (2 V, R0 R1 n)
    (real and imaginary rows), then along the rows ``T2 = Dh T1^T`` (2 Nh, 2 V R0 R1), whose
    four blocks combine as (Dh_re + i Dh_im)(T1_re + i T1_im) into S. On the host, slices of
    R0 are run side by side and in parts that stay in cache (``_plane_parts``)."""
    xp = get_xp(a)
    R0, R1, n, m = a.shape
    (oh, ow), (Nh, Nw) = offset, N
    V = Nw // 2 + 1
    Dw = _dft_rows(xp, a.dtype.name, m, ow, Nw, sign, True)
    Dh = _dft_rows(xp, a.dtype.name, n, oh, Nh, sign, False)
    S = xp.empty((Nh, V, R0, R1), dtype=_complex_dtype(a.dtype.name))
    s = S.view(a.dtype).reshape(Nh, V, R0, R1, 2)  # real and imaginary parts side by side
    ranges, per = _plane_parts(xp, R0, R1 * (2 * V * n + 4 * Nh * V))

    def part(lo, hi):
        for r in range(lo, hi, per):
            q = min(r + per, hi)
            T1 = xp.matmul(Dw, a[r:q].reshape(-1, m).T)
            T2 = xp.matmul(Dh, T1.reshape(-1, n).T).reshape(2, Nh, 2, V, q - r, R1)
            xp.subtract(T2[0, :, 0], T2[1, :, 1], out=s[:, :, r:q, :, 0])
            xp.add(T2[0, :, 1], T2[1, :, 0], out=s[:, :, r:q, :, 1])
    host_parallel(part, ranges)
    return S


def _planes(S, offset, N, sign, out):
    """The inverse of ``_spectrum`` at the pixels (t + offset) mod N, t < n, written into
    the real ``out`` (R0, R1, n, m), any strides: ``out[r0, r1, t, s] = Re sum_{u, v} c_v
    S[u, v, r0, r1] exp(sign 2 pi i (u (t + oh) / Nh + v (s + ow) / Nw)) / (Nh Nw)``, c_v as
    ``_inverse_dft``. Along the rows ``Z[v] = Eh^T S[:, v]`` (n, R0 R1) for every v, one
    batched GEMM; then along the columns one real GEMM of Z's real and imaginary parts
    with Ew's two halves, whose two useful blocks add up to the planes: the pixels come out
    last with no transposed copy. On the host, slices of R0 run side by side, in parts
    that stay in cache (``_plane_parts``)."""
    xp = get_xp(S)
    R0, R1, n, m = out.shape
    (oh, ow), (Nh, Nw) = offset, N
    V = S.shape[1]
    Eh, _ = _inverse_dft(xp, out.dtype.name, n, oh, Nh, sign)
    _, Ew = _inverse_dft(xp, out.dtype.name, m, ow, Nw, sign)
    S = S.reshape(Nh, V, R0, R1)
    ranges, per = _plane_parts(xp, R0, R1 * (2 * V * n + 4 * n * m))

    def part(lo, hi):
        for r in range(lo, hi, per):
            q = min(r + per, hi)
            Z = xp.matmul(Eh.T, S[:, :, r:q].transpose(1, 0, 2, 3).reshape(V, Nh, -1))  # (V, n, k R1)
            P = xp.matmul(Z.view(out.dtype).reshape(V, -1).T, Ew).reshape(n, q - r, R1, 2, 2 * m)
            xp.add(P[..., 0, :m], P[..., 1, m:], out=out[r:q].transpose(2, 0, 1, 3))
    host_parallel(part, ranges)
    return out


def _planes_of(a):
    """A 4-D array's planes in memory order: (a as (C, B, H, W), True) when it is a view
    of channel-major memory, else (a, False); ``_spectrum`` reads either in place."""
    if a.strides[1] > a.strides[0]:
        return a.transpose(1, 0, 2, 3), True
    return a, False


def fourier_size(H, W, padH, padW):
    """The circular size (Nh, Nw) of the Fourier path: the smallest with no wrap-around,
    ``H + padH`` by ``W + padW`` (module docstring)."""
    return H + padH, W + padW


def _weight_spectrum(weight, padH, padW, N, memo):
    """The conjugate spectrum of the kernel placed at (i - padH, j - padW) mod N, (Nh, V, F, C),
    from ``memo`` if it holds one for this geometry, else computed (and kept there)."""
    key = ("fourier", N, padH, padW)
    K = None if memo is None else memo.get(key)
    if K is None:
        K = _spectrum(weight, (-padH, -padW), N, +1)
        if memo is not None:
            memo[key] = K
    return K


#: On the host, the elements of the spectra one Fourier call holds for a chunk of frames (32
#: MiB in float32; a batch that needs more is split into chunks of frames), and of each slice
#: of bins in which it makes dK. A device, where memory is ample and every slice is more
#: kernel launches, takes ``WORK_ELEMENTS`` and all the bins at once.
FOURIER_WORK_ELEMENTS = 1 << 23


def _fourier_budget(xp):
    return FOURIER_WORK_ELEMENTS if xp is host_xp else WORK_ELEMENTS


def _fourier_forward(x, weight, padH, padW, y, memo):
    """The stride-1 Fourier forward, written into ``y`` (F, B, Ho, Wo), any strides: per bin,
    ``Y = conj(K) X`` as (F, C) @ (C, B) (one batched GEMM), K and X the spectra of the kernel
    and the frames; chunked over frames within ``FOURIER_WORK_ELEMENTS``."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    F = weight.shape[0]
    N = fourier_size(H, W, padH, padW)
    bins = N[0] * (N[1] // 2 + 1)
    K = _weight_spectrum(weight, padH, padW, N, memo).reshape(bins, F, C)
    for b0, b1 in batch_chunks(B, 2 * bins * (C + F), _fourier_budget(xp)):
        planes, channel_first = _planes_of(x[b0:b1])
        X = _spectrum(planes, (0, 0), N, -1).reshape((bins,) + planes.shape[:2])
        Y = xp.matmul(K, X if channel_first else X.transpose(0, 2, 1))
        _planes(Y.reshape(N[0], -1, F, b1 - b0), (0, 0), N, +1, y[:, b0:b1])


def _fourier_backward(gy, weight, x, gxc, input_shape, padH, padW, memo):
    """The stride-1 Fourier backward: writes dL/dx into ``gxc`` (C, B, H, W) unless it is None
    and returns dL/dW (F, C, kH, kW) unless ``x`` is None. With G the conjugate spectrum of
    gy, per bin ``conj(dX) = K^T G`` (K as the forward's) and ``dK = G X^T`` summed over the
    chunks of frames (``FOURIER_WORK_ELEMENTS``), whose inverse at the kernel's offsets is
    dL/dW. dK's product is made for a slice of the bins at a time and added in place, so no
    second array of dK's size is made."""
    xp = get_xp(gy)
    B, C, H, W = input_shape
    F, _, kH, kW = weight.shape
    N = fourier_size(H, W, padH, padW)
    V = N[1] // 2 + 1
    bins = N[0] * V
    K = None if gxc is None else _weight_spectrum(weight, padH, padW, N, memo).reshape(bins, F, C)
    dK = None if x is None else xp.zeros((bins, F, C), dtype=_complex_dtype(gy.dtype.name))
    per_slice = max(1, FOURIER_WORK_ELEMENTS // (8 * F * C)) if xp is host_xp else bins  # of dK
    for b0, b1 in batch_chunks(B, 2 * bins * (F + 2 * C), _fourier_budget(xp)):
        gplanes, g_first = _planes_of(gy[b0:b1])
        G = _spectrum(gplanes, (0, 0), N, +1).reshape((bins,) + gplanes.shape[:2])
        G = G if g_first else G.transpose(0, 2, 1)  # (bins, F, b)
        if gxc is not None:
            _planes(xp.matmul(K.transpose(0, 2, 1), G).reshape(N[0], V, C, b1 - b0), (0, 0), N, -1,
                    gxc[:, b0:b1])
        if x is not None:
            planes, channel_first = _planes_of(x[b0:b1])
            X = _spectrum(planes, (0, 0), N, -1).reshape((bins,) + planes.shape[:2])
            Xt = X.transpose(0, 2, 1) if channel_first else X  # (bins, b, C)
            for u in range(0, bins, per_slice):
                dK[u:u + per_slice] += xp.matmul(G[u:u + per_slice], Xt[u:u + per_slice])
    if x is None:
        return None
    return _planes(dK.reshape(N[0], V, F, C), (-padH, -padW), N, +1,
                   xp.empty(weight.shape, dtype=weight.dtype))


#: Multiply-adds a one-thread SGEMM does in the time a copy moves one element through
#: memory: 48-51 G/s against 7-9 G counted elements/s (an im2col frame of 0.8 M elements,
#: 0.17-0.23 ms; ``benchmarks/RESULTS.md``, tenth round). The path rule weighs the shift-add
#: forward's extra multiply-adds by it.
MULADDS_PER_ELEMENT = 5


#: None: each call takes the path of least memory traffic (``forward_path``,
#: ``backward_path``); a path's name forces it wherever it applies, the columns path
#: elsewhere (the tests and ``benchmarks/conv_paths.py`` compare the paths).
FORWARD_PATH = None
BACKWARD_PATH = None


def _cheapest(costs, forced):
    """The path named by ``forced`` if it applies (else "columns"), or the one of least cost
    (ties go to the first listed)."""
    if forced is not None:
        return forced if forced in costs else "columns"
    return min(costs, key=costs.get)


#: How many times its counts the Fourier path's measured time is: its GEMMs are narrow
#: (inner dimensions of 7 to 35, per-bin products over a few frames) and its spectra are
#: combined in passes of their own, so they run well below the SGEMM rate that
#: ``MULADDS_PER_ELEMENT`` assumes: 1.5-5.4 times, median about 3, over the forwards and
#: backwards of the Table 1 models' 7x7 layers. 2.5 picks the fastest path on each of them
#: (``benchmarks/RESULTS.md``, eleventh round).
FOURIER_SLOWDOWN = 2.5


def _fourier_cost(C, H, W, F, kH, kW, padH, padW, frames, forward=False, need_input=False,
                  need_weight=False):
    """The Fourier path's cost per frame, in the elements of "Choosing a path": its GEMMs'
    multiply-adds over ``MULADDS_PER_ELEMENT`` plus the spectra it writes and reads. The
    kernel's spectrum (and for dL/dW its inverse) is made once per call, so ``frames`` shares it."""
    Ho, Wo = out_size(H, kH, 1, padH), out_size(W, kW, 1, padW)
    Nh, Nw = fourier_size(H, W, padH, padW)
    V = Nw // 2 + 1
    bins = Nh * V
    frames = max(1, frames)  # an empty batch still makes the kernel's spectrum

    def spectrum(n, m):  # per plane in: two GEMMs, their four-block product combined
        return (2 * V * m * n + 4 * Nh * n * V) / MULADDS_PER_ELEMENT + 10 * bins

    def planes(n, m):  # per plane out: two GEMMs, the two-block product added up
        return (4 * V * Nh * n + 4 * n * V * m) / MULADDS_PER_ELEMENT + 4 * V * n + 8 * n * m

    products = 4 * bins * F * C / MULADDS_PER_ELEMENT
    kernel = F * C * (spectrum(kH, kW) + 2 * bins) / frames  # made, then read by each product
    cost = 0
    if forward:
        cost += C * spectrum(H, W) + products + F * planes(Ho, Wo) + kernel
    if need_input or need_weight:
        cost += F * spectrum(Ho, Wo)
    if need_input:
        cost += products + C * planes(H, W) + kernel
    if need_weight:
        cost += C * spectrum(H, W) + products + F * C * planes(kH, kW) / frames
    return FOURIER_SLOWDOWN * cost


#: The most elements the kernel's spectrum (or dK) may hold for the Fourier path to apply
#: (128 MiB in float32): it grows with the frame, 83 MB for the paper's 64 -> 256 hidden map
#: at 32x32 but 300 MB at 64x64, where the direct paths are no slower anyway.
FOURIER_KERNEL_ELEMENTS = 1 << 25


def _fourier_applies(C, H, W, F, kH, kW, dH, dW, padH, padW):
    """Stride 1, padding at most k - 1, and a kernel spectrum within ``FOURIER_KERNEL_ELEMENTS``."""
    Nh, Nw = fourier_size(H, W, padH, padW)
    return (dH == 1 and dW == 1 and padH < kH and padW < kW
            and 2 * Nh * (Nw // 2 + 1) * F * C <= FOURIER_KERNEL_ELEMENTS)


def forward_path(C, H, W, F, kH, kW, dH=1, dW=1, padH=0, padW=0, frames=1):
    """The forward's path, "columns", "shift" (stride 1), "rows" (stride 1) or "fourier"
    (``_fourier_applies``), by the elements each moves through memory per frame
    and its multiply-adds, for a call of ``frames`` frames (module docstring, "Choosing a path")."""
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    direct = F * C * kH * kW * Ho * Wo / MULADDS_PER_ELEMENT  # the same for every direct path
    costs = {"columns": 3 * C * kH * kW * Ho * Wo + direct}
    if dH == 1 and dW == 1:
        Hp, Wp = H + 2 * padH, W + 2 * padW
        costs["shift"] = ((4 * C + 2 * F * kH * kW) * Hp * Wp
                          + F * kH * kW * C * (Hp * Wp - H * W) / MULADDS_PER_ELEMENT + direct)
        costs["rows"] = (3 * C * kW * H + 4 * kH * F * Hp) * Wo + direct
    if _fourier_applies(C, H, W, F, kH, kW, dH, dW, padH, padW):
        costs["fourier"] = _fourier_cost(C, H, W, F, kH, kW, padH, padW, frames, forward=True)
    return _cheapest(costs, FORWARD_PATH)


def backward_path(C, H, W, F, kH, kW, dH=1, dW=1, padH=0, padW=0, need_input=True, need_weight=True,
                  frames=1):
    """The backward's path, "columns", "gradient", "rows" or "fourier" (these three need stride
    1 and padding at most k - 1, the last ``_fourier_applies`` too), by the elements each moves per frame for the gradients asked
    and its multiply-adds, for a call of ``frames`` frames."""
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    direct = (need_input + need_weight) * F * C * kH * kW * Ho * Wo / MULADDS_PER_ELEMENT
    # gy's channel-major copy is read by each GEMM; x's by the gradient side's dL/dW
    costs = {"columns": (3 * need_weight + 4 * need_input) * C * kH * kW * Ho * Wo
             + (2 + need_weight + need_input) * F * Ho * Wo + direct}
    if dH == 1 and dW == 1 and padH < kH and padW < kW:
        costs["gradient"] = ((2 + need_weight + need_input) * F * kH * kW * H * W
                             + need_weight * 3 * C * H * W + direct)
        costs["rows"] = (need_weight * (2 + kH) * (C * kW * (H + 2 * padH) + F * Ho) * Wo
                         + need_input * (3 * F * kW * Ho + 4 * kH * C * (Ho + 2 * (kH - 1 - padH))) * W
                         + direct)
    if _fourier_applies(C, H, W, F, kH, kW, dH, dW, padH, padW):
        costs["fourier"] = _fourier_cost(C, H, W, F, kH, kW, padH, padW, frames,
                                         need_input=need_input, need_weight=need_weight)
    return _cheapest(costs, BACKWARD_PATH)


def _shifted_weight(weight):
    """W (F, C, kH, kW) -> Wr (F kH kW, C)."""
    F, C, kH, kW = weight.shape
    return weight.transpose(0, 2, 3, 1).reshape(F * kH * kW, C)


def _flipped_weight(weight):
    """W (F, C, kH, kW) -> Wf (F kH kW, C) with ``Wf[(f, i', j'), c] = W[f, c, kH-1-i', kW-1-j']``."""
    return _shifted_weight(weight[:, :, ::-1, ::-1])


def _split_frames(xp, B):
    """The ranges of B frames that ``host_parallel`` runs side by side, and each range's
    work-buffer budget: its share of ``WORK_ELEMENTS``, on the host at most
    ``CACHE_ELEMENTS`` (at least one element: a frame is then its own chunk)."""
    ranges = host_ranges(xp, B)
    share = WORK_ELEMENTS // len(ranges)
    if xp is host_xp:
        share = min(share, CACHE_ELEMENTS)
    return ranges, max(1, share)


def conv2d(x, weight, bias, dH=1, dW=1, padH=0, padW=0, channel_major=False, memo=None):
    """y = conv(x, W) + bias for x (B, C, H, W), weight (F, C, kH, kW), bias (F,) or None.

    The GEMMs write y as (F, B, Ho, Wo). It is returned as a contiguous (B, F, Ho, Wo)
    array, or, with ``channel_major``, as a (B, F, Ho, Wo) view of that memory (no copy),
    for a caller that works in channel-major layout (the convolutional LSTMs). On the host
    the frames are split over the BLAS threads (``host_parallel``), but for the Fourier path,
    whose GEMMs are few and large and run on all of them. ``memo``: a dict that the caller
    keeps while ``weight`` does not change (a recurrent map's calls over one sequence), in
    which the Fourier path keeps the kernel's spectrum for the next call."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho, Wo = out_size(H, kH, dH, padH), out_size(W, kW, dW, padW)
    path = forward_path(C, H, W, F, kH, kW, dH, dW, padH, padW, B)
    if path == "fourier":  # written straight into the layout asked for
        out = xp.empty((F, B, Ho, Wo) if channel_major else (B, F, Ho, Wo), dtype=x.dtype)
        y = out if channel_major else out.transpose(1, 0, 2, 3)
        _fourier_forward(x, weight, padH, padW, y, memo)
        if bias is not None:
            y += bias.reshape(F, 1, 1, 1)
        return channel_major_view(out) if channel_major else out
    y = xp.empty((F, B, Ho, Wo), dtype=x.dtype)
    ranges, budget = _split_frames(xp, B)
    out, fill = _batch_layout(y, channel_major)

    def frames(lo, hi):
        _forward_frames(x[lo:hi], weight, bias, dH, dW, padH, padW, path, y[:, lo:hi], budget)
        fill(lo, hi)
    host_parallel(frames, ranges)
    return out


def _forward_frames(x, weight, bias, dH, dW, padH, padW, path, y, budget):
    """``conv2d``'s work for the frames of ``x``, by ``path``, into ``y`` (F, B, Ho, Wo),
    in chunks of frames whose work buffer holds at most ``budget`` elements."""
    xp = get_xp(x)
    B, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho, Wo = y.shape[2:]
    if path == "rows":
        _rows_conv(x, weight, padH, padW, y, budget)
    elif path == "shift":
        _shift_conv(x, weight, padH, padW, y, budget)
    else:
        W2 = weight.reshape(F, -1)
        for b0, b1 in batch_chunks(B, C * kH * kW * Ho * Wo, budget):
            xp.matmul(W2, im2col(x[b0:b1], kH, kW, dH, dW, padH, padW), out=y[:, b0:b1].reshape(F, -1))
    if bias is not None:
        y += bias.reshape(F, 1, 1, 1)


def conv2d_backward(gy, weight, input_shape, x=None, gradWeight=None, gradBias=None, scale=1.0,
                    need_input=True, dH=1, dW=1, padH=0, padW=0, channel_major=False, memo=None):
    """Both gradients of ``conv2d`` in one pass over the batch chunks, given gy = dL/dy.

    Returns dL/dx (shape ``input_shape``) when ``need_input``, else None. When ``x`` is
    given, also accumulates ``gradWeight += scale * dL/dW`` and ``gradBias += scale *
    dL/dbias``. Each chunk's gy is laid out once (channel-major, as its columns G on
    the gradient-side path, or as its spectrum on the Fourier path) and feeds both
    products; the im2col columns of the weight gradient and the input gradient's columns
    share one work buffer. ``gy`` and ``x`` may be channel-major views: their channel-major
    layout is then a view, not a copy. dL/dx is computed as (C, B, H, W); with
    ``channel_major`` it is returned as a view of that memory, else as a contiguous
    (B, C, H, W) array. On the host the frames are split over the BLAS threads
    (``host_parallel``), each part's weight and bias gradients summed at the end, but for
    the Fourier path (as ``conv2d``, whose ``memo`` this takes too).
    """
    xp = get_xp(gy)
    B, C, H, W = input_shape
    F, _, kH, kW = weight.shape
    need_weight, need_bias = x is not None, x is not None and gradBias is not None
    path = backward_path(C, H, W, F, kH, kW, dH, dW, padH, padW, need_input, need_weight, B)
    if path == "fourier":
        gx = xp.empty((C, B, H, W) if channel_major else input_shape, dtype=gy.dtype) if need_input else None
        gxc = None if gx is None else gx if channel_major else gx.transpose(1, 0, 2, 3)
        gW = _fourier_backward(gy, weight, x, gxc, input_shape, padH, padW, memo)
        parts = [] if gW is None else [(gW, gy.sum(axis=(0, 2, 3)) if need_bias else None)]
        gx = channel_major_view(gx) if channel_major and need_input else gx
    else:
        gxc = xp.empty((C, B, H, W), dtype=gy.dtype) if need_input else None
        ranges, budget = _split_frames(xp, B)
        gx, fill = _batch_layout(gxc, channel_major)

        def frames(lo, hi):
            part = _backward_frames(gy[lo:hi], weight, x[lo:hi] if need_weight else None,
                                    gxc[:, lo:hi] if need_input else None, (hi - lo, C, H, W), dH, dW,
                                    padH, padW, path, need_bias, budget)
            fill(lo, hi)
            return part
        parts = host_parallel(frames, ranges)
    if need_weight:
        gW = sum(gW for gW, _ in parts)
        if path == "rows":  # gW[i, (c, j), f] holds dL/dW[f, c, i, j]
            gW = gW.reshape(kH, C, kW, F).transpose(3, 1, 0, 2)
        elif path == "gradient":  # gW[(f, i', j'), c] holds dL/dW[f, c, kH-1-i', kW-1-j']
            gW = gW.reshape(F, kH, kW, C)[:, ::-1, ::-1].transpose(0, 3, 1, 2)
        else:
            gW = gW.reshape(gradWeight.shape)
        gradWeight += scale * gW
    if need_bias:
        gradBias += scale * sum(gb for _, gb in parts)
    return gx


def _backward_frames(gy, weight, x, gxc, input_shape, dH, dW, padH, padW, path, need_bias, budget):
    """``conv2d_backward``'s work for the frames of ``gy``, by ``path``: writes dL/dx into
    ``gxc`` (C, B, H, W) unless it is None, and returns (dL/dW in the path's layout, dL/dbias)
    for these frames, (None, None) for what ``x`` None or ``need_bias`` False leaves out.
    Chunks of frames hold at most ``budget`` elements in the work buffer."""
    xp = get_xp(gy)
    B, C, H, W = input_shape
    F, _, kH, kW = weight.shape
    gW = 0 if x is not None else None
    if path == "rows":
        Ho, Wo = gy.shape[2:]
        if x is not None:
            for b0, b1 in batch_chunks(B, (C * kW * (H + 2 * padH) + F * Ho) * Wo, budget):
                n, m = (H + 2 * padH) * (b1 - b0) * Wo, Ho * (b1 - b0) * Wo
                buf = scratch(xp, C * kW * n + F * m, x.dtype)  # R, then gy laid out
                R = row_columns(x[b0:b1], kW, padH, padW, buf[:C * kW * n])
                # dL/dW[f, c, i, j] = sum_{p, b, q} R[(c, j), (p + i, b, q)] gy[f, b, p, q]: kH GEMMs
                # (one batched matmul) of the row-shifted windows of R with gy as ((p, b, q), F), the
                # transposed view of its copy as (F, (p, b, q)) (a copy in runs of Wo; none with F last)
                gyr = buf[C * kW * n:].reshape(F, Ho, b1 - b0, Wo)
                xp.copyto(gyr, gy[b0:b1].transpose(1, 2, 0, 3))
                gyr = gyr.reshape(F, -1)
                sr, sc = R.strides
                Ri = xp.lib.stride_tricks.as_strided(R, shape=(kH, C * kW, gyr.shape[1]),
                                                     strides=((b1 - b0) * Wo * sc, sr, sc))
                gW = gW + xp.matmul(Ri, gyr.T)
        if gxc is not None:  # the stride-1 correlation of the gradient side, by rows
            _rows_conv(gy, weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), kH - 1 - padH, kW - 1 - padW,
                       gxc, budget)
    elif path == "gradient":
        Wf = _flipped_weight(weight)
        for b0, b1 in batch_chunks(B, F * kH * kW * H * W, budget):
            G = im2col(gy[b0:b1], kH, kW, 1, 1, kH - 1 - padH, kW - 1 - padW)
            if x is not None:
                gW = gW + xp.matmul(G, to_channel_major(x[b0:b1]).T)
            if gxc is not None:
                xp.matmul(Wf.T, G, out=gxc[:, b0:b1].reshape(C, -1))
    else:
        W2 = weight.reshape(F, -1)
        K, L = W2.shape[1], gy.shape[2] * gy.shape[3]
        for b0, b1 in batch_chunks(B, K * L, budget):
            gyc = to_channel_major(gy[b0:b1])
            if x is not None:  # before gcols: the columns live in the same work buffer
                gW = gW + xp.matmul(gyc, im2col(x[b0:b1], kH, kW, dH, dW, padH, padW).T)
            if gxc is not None:
                gcols = xp.matmul(W2.T, gyc, out=scratch(xp, K * gyc.shape[1], gy.dtype).reshape(K, -1))
                gxc[:, b0:b1] = col2im(gcols, b1 - b0, C, H, W, kH, kW, dH, dW, padH, padW)
    return gW, gy.sum(axis=(0, 2, 3)) if need_bias else None


def conv2d_grad_input(gy, weight, input_shape, dH=1, dW=1, padH=0, padW=0):
    """dL/dx for ``conv2d`` given gy = dL/dy."""
    return conv2d_backward(gy, weight, input_shape, dH=dH, dW=dW, padH=padH, padW=padW)


def conv2d_acc_grad_params(x, gy, gradWeight, gradBias, scale=1.0, dH=1, dW=1, padH=0, padW=0):
    """Accumulate ``gradWeight += scale * dL/dW`` and ``gradBias += scale * dL/dbias``."""
    conv2d_backward(gy, gradWeight, x.shape, x, gradWeight, gradBias, scale, False, dH, dW, padH, padW)
