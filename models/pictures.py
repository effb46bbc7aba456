"""Pictures a person can read: labelled prediction strips, the loss curve, an animation.

Drawn with matplotlib (Agg, no screen needed) and written atomically. Every model family
gives its rows through ``picture_rows`` (see ``video_predictor``): a row is a label and
tiles, a tile an (H, W) frame in [0, 1], an (H, W, 3) RGB picture in [0, 1] (class colours)
or an (h, w, 2) flow (y, x) in pixels. All flow
tiles of one figure share one colour scale (the largest magnitude among them), shown
with the Middlebury colour-wheel key and that maximum in pixels.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib depends on Pillow)

import nnlite as nn  # noqa: E402
from nnlite import visual  # noqa: E402
from nnlite.atomic import atomic_path  # noqa: E402

host_xp = nn.backend.host_xp


def _is_flow(tile):
    return tile.ndim == 3 and tile.shape[-1] == 2


def _wheel_key(size=65):
    """The colour key: a disc of flows pointing every way, magnitude 0 at the centre to 1 at the rim."""
    r = host_xp.linspace(-1, 1, size)
    y, x = host_xp.meshgrid(r, r, indexing="ij")
    rgb = visual.flow_to_color(host_xp.stack([y, x]), max_magnitude=1.0).astype("float64") / 255
    rgb[x * x + y * y > 1] = 1.0
    return rgb


def _save(fig, path, **kw):
    """Write a matplotlib figure atomically, in the format of ``path``'s extension."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    fmt = os.path.splitext(path)[1][1:] or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **kw)
    plt.close(fig)
    return path


def _layout(rows):
    """Figure rows of (label, tiles, titles): consecutive one-tile rows share one figure row,
    each tile titled by its label (truth | prediction | flow side by side)."""
    out = []
    for label, tiles in rows:
        if len(tiles) == 1 and out and out[-1][0] is None:
            out[-1][1].append(tiles[0])
            out[-1][2].append(label)
        elif len(tiles) == 1:
            out.append((None, [tiles[0]], [label]))
        else:
            out.append((label, list(tiles), [f"t={c}" if label == "input" else "" for c in range(len(tiles))]))
    return out


def prediction_figure(rows, path, title=None, key=None):
    """Write labelled rows of tiles as one figure (PNG): frames in grey, flows in colour.

    Returns ``path``. A figure with a flow ends its flow's row with the key: the colour
    wheel and the maximum magnitude in pixels that full saturation stands for. ``key``, a
    list of ``(name, rgb)`` (a model's ``picture_key``: the class colours of a
    segmentation), is drawn as a legend under the tiles.
    """
    flows = [t for _, tiles in rows for t in tiles if _is_flow(t)]
    vmax = max((float(host_xp.sqrt((f ** 2).sum(-1)).max()) for f in flows), default=0.0)
    layout = _layout(rows)
    ncols = max(len(tiles) + any(_is_flow(t) for t in tiles) for _, tiles, _ in layout)
    width, legend = 1.1 * ncols + 0.8, 0.5 if key else 0.0
    fig, axes = plt.subplots(len(layout), ncols, figsize=(width, 1.3 * len(layout) + 0.4 + legend),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, (label, tiles, titles) in enumerate(layout):
        if label:
            axes[r, 0].text(-0.12, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center",
                            fontsize=9)
        for c, (tile, name) in enumerate(zip(tiles, titles)):
            if _is_flow(tile):
                axes[r, c].imshow(visual.flow_to_color(tile.transpose(2, 0, 1), max_magnitude=vmax or 1.0),
                                  interpolation="nearest")
            elif tile.ndim == 3:  # an RGB picture (class colours) in [0, 1]
                axes[r, c].imshow(tile.clip(0, 1), interpolation="nearest")
            else:
                axes[r, c].imshow(tile, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[r, c].set_title(name, fontsize=8)
        if any(_is_flow(t) for t in tiles):
            wheel = axes[r, len(tiles)]
            wheel.imshow(_wheel_key())
            wheel.set_title(f"flow key\nmax {vmax:.2f} px", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    if key:
        handles = [Patch(facecolor=rgb, edgecolor="0.6", label=name) for name, rgb in key]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(key), 6), fontsize=7, frameon=False)
    # the row labels sit left of the tiles: leave room for the longest (about 0.07 inch a letter)
    longest = max((len(label) for label, _, _ in layout if label), default=0)
    fig.subplots_adjust(left=min(0.4, (0.15 + 0.07 * longest) / width), right=0.99, wspace=0.08,
                        hspace=0.45, bottom=(legend + 0.1) / fig.get_figheight() if key else 0.11)
    return _save(fig, path, dpi=100)


def loss_curve(records, path, title=None):
    """Write the training loss per step and the validation loss (``metrics.jsonl`` records).

    Training records have ``loss``; validation records have ``val_loss`` (and, for the flow
    model, ``val_epe``: drawn on a second axis). Non-finite values (logged as null) are
    skipped. Log scale when the loss spans a decade or more.
    """
    train = [(r["step"], r["loss"]) for r in records if r.get("loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, lw=0.8, alpha=0.5, label="training (per step)")
        k = max(1, len(losses) // 25)
        if k > 1:
            avg = host_xp.convolve(losses, host_xp.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], avg, lw=1.6, label=f"training ({k}-step mean)")
    if val:
        steps, losses = zip(*val)
        ax.plot(steps, losses, "o-", lw=1.6, label="validation")
    values = [v for _, v in train + val if v > 0]
    if values and max(values) / min(values) >= 10:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()
    epe = [(r["step"], r["val_epe"]) for r in records if r.get("val_epe") is not None]
    if epe:  # the flow model: how far its flow is from the true motion, on a second axis
        right = ax.twinx()
        steps, errors = zip(*epe)
        right.plot(steps, errors, "s--", color="tab:red", lw=1.2, label="validation flow EPE (px)")
        right.set_ylabel("endpoint error (px)")
        extra = right.get_legend_handles_labels()
        handles = (handles[0] + extra[0], handles[1] + extra[1])
    ax.legend(*handles, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path, dpi=100)


def _as_sequence(a):
    """Frames (T, H, W) of sequence 0 from a stacked (T, B, 1, H, W) array or a list of them."""
    parts = a if isinstance(a, (list, tuple)) else [a]
    return host_xp.concatenate([nn.to_numpy(p[:, 0, 0]) for p in parts])


def prediction_animation(model, batch, path, fps=4):
    """Write an animated GIF: the truth and the model's prediction of each frame it predicts.

    Runs the model in evaluation mode on ``model.split(batch)`` and shows sequence 0 of
    the targets beside the outputs, one frame per predicted step (several decoders in
    turn, as ``split`` orders them). A model whose outputs are not frames (the segmentation
    models) gives its own sequence-0 tiles through ``animation_frames(batch) -> (truth, pred)``.
    """
    model.evaluate()
    if hasattr(model, "animation_frames"):
        truth, pred = model.animation_frames(batch)
    else:
        inputs, targets = model.split(batch)
        truth, pred = _as_sequence(targets), _as_sequence(model.forward(inputs))
    fig, axes = plt.subplots(1, 2, figsize=(4, 2.3))
    images = []
    for ax, seq, label in zip(axes, (truth, pred), ("truth", "prediction")):
        ax.axis("off")
        ax.set_title(label, fontsize=9)
        images.append(ax.imshow(seq[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest"))
    caption = fig.text(0.5, 0.03, "", ha="center", fontsize=8)

    frames = []
    for k in range(len(truth)):
        for im, seq in zip(images, (truth, pred)):
            im.set_data(seq[k])
        caption.set_text(f"predicted frame {k + 1} of {len(truth)}")
        fig.canvas.draw()
        frames.append(Image.fromarray(host_xp.asarray(fig.canvas.buffer_rgba())).convert("P"))
    plt.close(fig)
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=int(1000 / fps), loop=0)
    return path

