"""Table 1's metric: the next frame after 10 input frames, on the test sequences.

The paper reports a "per-pixel test error" without defining it; we report both
the mean per-pixel binary cross-entropy and the mean per-pixel squared error,
for the model and for the baseline that copies the last input frame.
"""
import nnlite as nn
from nnlite import visual

_BCE, _MSE = nn.BCECriterion(), nn.MSECriterion()


def per_pixel_errors(pred, target):
    """(mean per-pixel BCE, mean per-pixel squared error) as floats: the training criterions."""
    return _BCE.forward(pred, target), _MSE.forward(pred, target)


def predict_next(model, frames, n_inputs=10):
    """The model's prediction of frame ``n_inputs`` from frames ``0 .. n_inputs-1``."""
    return model.forward(frames[:n_inputs])[-1]


def evaluate(model, batches, xp, n_inputs=10):
    """Average errors over batches of test sequences (T >= n_inputs + 1, B, 1, H, W).

    Returns ``{'bce', 'sqerr', 'copy_bce', 'copy_sqerr', 'sequences'}``; the model is
    put in evaluation mode (no per-step caches) and left there.
    """
    model.evaluate()
    sums = dict(bce=0.0, sqerr=0.0, copy_bce=0.0, copy_sqerr=0.0)
    n = 0
    for host_frames in batches:
        frames = xp.asarray(host_frames)
        target = frames[n_inputs]
        b = frames.shape[1]
        bce, sq = per_pixel_errors(predict_next(model, frames, n_inputs), target)
        copy = xp.clip(frames[n_inputs - 1], 0, 1)
        cbce, csq = per_pixel_errors(copy, target)
        for k, v in zip(sums, (bce, sq, cbce, csq)):
            sums[k] += v * b
        n += b
    result = {k: v / n for k, v in sums.items()}
    result["sequences"] = n
    return result


def flow_picture(model, size):
    """The last predicted flow of a flow model as a colour image upscaled to ``size``, or None."""
    flow = getattr(getattr(model, "theta", None), "output", None)
    if flow is None:
        return None
    color = nn.to_numpy(visual.flow_to_color(flow[-1]))
    k = size // color.shape[0]
    return color.repeat(k, axis=0).repeat(k, axis=1)


def prediction_strip(model, frames, path, n_inputs=10):
    """Write a PNG: the inputs, the true next frame, the prediction and (flow model) the flow."""
    model.evaluate()
    pred = nn.to_numpy(predict_next(model, frames[:, :1], n_inputs))[0, 0]
    host = nn.to_numpy(frames[:, 0, 0])
    tiles = [host[t] for t in range(n_inputs)] + [host[n_inputs], pred]
    flow = flow_picture(model, host.shape[-1])
    row = [(t * 255).clip(0, 255).astype("uint8") for t in tiles]
    row = [t[..., None].repeat(3, axis=2) for t in row]
    if flow is not None:
        row.append(flow)
    visual.write_png(path, visual.image_strip([row]))
    return path
