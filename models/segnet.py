"""SegNet and SegNet-flow (Patraucean et al. 2016, section 5.2, Figures 7 and 8): weakly
supervised video segmentation by propagating a per-frame segmentation along the flow that
AE-ConvLSTM-flow predicts, trained with labels on one frame per sequence.

Classes: Moving MNIST's per-pixel labels, ``C = 11``: digit d is class d (0..9) and the
background (``moving_mnist.generator.BACKGROUND``) is class 10. A batch's ``"labels"`` are
(T, B, H, W) integers; training masks every frame but ``labelled_frame`` with ``UNLABELLED``
(the cross-entropy's ``ignoreIndex``), as CamVid labels one frame per sequence.

**SegNet** (Badrinarayanan et al. 2015, the basic encoder-decoder), per frame, time folded
into the batch, with ``f = seg_features`` and ``k = seg_kernel``::

    enc 1   conv 1->f   kxk + BN + ReLU + maxpool 2x2      (indices i1)
    enc 2   conv f->2f  kxk + BN + ReLU + maxpool 2x2      (indices i2)
    dec 2   unpool(i2) + conv 2f->f kxk + BN + ReLU
    dec 1   unpool(i1) + conv f->f  kxk + BN + ReLU
    class   conv f->C 1x1                                   Lb_t (B, C, H, W): class scores

The decoder puts each value back where its encoder's max pooling found the maximum
(``SpatialMaxUnpooling``), SegNet's memory-light alternative to learnt upsampling.

**SegNet-flow** (Figure 7), frames X_0 .. X_{T-1}, (h, w) = (H/2, W/2)::

    Y~_{t+1}, T_t = AE-ConvLSTM-flow(X_0 .. X_t)          t = 0 .. T-2
    Lb_t          = SegNet(X_t)                             t = 0 .. T-1
    L~            = LabelPropagation([Lb, T])               (below)

**Which flow.** AE-ConvLSTM-flow predicts frame t+1 by sampling frame t's features at
``p + T_t(p)``: T_t, made from frames 0..t, is a backward flow that maps t to t+1 by
pulling. So the flow that carries the labels of t-1 to t is ``T_{t-1}``, the one that
predicted frame t, made before frame t is seen, the same causal use as the frames'.

**Label propagation** (the paper's recurrent module: the sampler S and the merging block M)::

    U_{t-1}  = s * up2(T_{t-1})           (B, 2, H, W)  flow at full resolution
    G_{t-1}  = GridGenerator(H, W)(U_{t-1})
    P_{t-1}  = softmax_c(L~_{t-1})         probabilities of the previous final labels
    Lw_{t-1} = S(P_{t-1}, G_{t-1})         warped to time t;  Lw_{-1} = 0
    L~_t     = M([Lb_t, Lw_{t-1}]) = conv_{2C->C, km x km}(concatenation over channels)

**Probabilities, not scores, are warped**: they lie in [0, 1], so the recurrence through
M stays bounded however M's weights grow, and the zeros the sampler returns outside the
image read as "no evidence" for every class.

**Resolution.** The warp happens at full resolution: the labels' strokes are one or two
pixels wide, and warping at half resolution would average them into 2x2 blocks. The flow
is upsampled by copying (``up2``, nearest) and rescaled: normalised units span the image
between the centres of its border pixels, ``h - 1`` half-resolution pixels, which are
``2 (h - 1)`` full-resolution pixels, against ``H - 1`` for the full-resolution grid, so
``s = (2 (h - 1)/(H - 1), 2 (w - 1)/(W - 1))`` (62/63 at 64x64) per (y, x) channel.

**Loss** (``make_criterion``)::

    L = recon(Y~_{1..T-1}, X_{1..T-1}) + seg_weight * sum_{t labelled} CE(L~_t, labels_t)
        (+ the flow's Huber smoothness, injected in backward)

with CE the per-pixel mean cross-entropy of the frame (softmax over C). Unlabelled frames
add nothing: their labels are ``UNLABELLED`` and the criterion skips them.

**Gradients** (explicit backward; ``g.`` = dL/d.). LabelPropagation, from t = T-1 down to 0,
with ``c_T = 0``::

    gL~_t              = gOut_t + c_{t+1}
    [gLb_t, gLw_{t-1}] = M^T gL~_t       (transposed convolution; gW_M += corr(Z_t, gL~_t),
                                          gb_M += sum gL~_t, Z_t = [Lb_t, Lw_{t-1}])
    gP_{t-1}, gG_{t-1} = S's backward     (bilinear weights; their piecewise derivative)
    c_t                = P_{t-1} (gP_{t-1} - sum_c gP_{t-1} P_{t-1})   (softmax), t > 0
    gU_{t-1}           = gG_{t-1} moved to channel-first           (GridGenerator)
    gT_{t-1}           = up2^T(s gU_{t-1})    (sum of each 2x2 block)

SegNet-flow: the criterion gives ``[gY~, gL~]``; the propagation gives ``gLb`` and
``gT``; ``gX = SegNet^T gLb`` plus, for frames 0..T-2, AE-ConvLSTM-flow's backward of
``gY~`` with ``gT`` added at its flow (``AEConvLSTMFlow._backward(gradFlow=...)``), so
the segmentation loss trains the flow branch too: the two tasks are learnt jointly.
"""
import nnlite as nn
from moving_mnist.generator import BACKGROUND
from nnlite.checks import check_array, check_int, check_shape, check_table
from nnlite.recurrent import fold_time, unfold_time

from .ae_convlstm_flow import AEConvLSTMFlow
from .blocks import OnePassBackward, conv
from .video_predictor import VideoPredictor, per_pixel_bce

#: number of classes: the ten digits and the background
CLASSES = BACKGROUND + 1
CLASS_NAMES = tuple(str(d) for d in range(BACKGROUND)) + ("background",)
#: the label of a pixel that has none (a frame without ground truth): skipped by the loss
UNLABELLED = -1
#: class colours of the pictures (RGB in [0, 1]): matplotlib's tab10 for the digits, black background
PALETTE = ((0.122, 0.467, 0.706), (1.0, 0.498, 0.055), (0.173, 0.627, 0.173), (0.839, 0.153, 0.157),
           (0.580, 0.404, 0.741), (0.549, 0.337, 0.294), (0.890, 0.467, 0.761), (0.498, 0.498, 0.498),
           (0.737, 0.741, 0.133), (0.090, 0.745, 0.812), (0.0, 0.0, 0.0))


def segnet_network(n_in=1, classes=CLASSES, features=16, kernel=7):
    """SegNet's per-frame network (module docstring): two encoder stages, two decoder stages
    driven by the encoder's pooling indices, a 1x1 classifier. Input (N, n_in, H, W), output
    (N, classes, H, W) scores (any H, W >= 4: unpooling restores the pooled input's size)."""
    layers, pools, n = [], [], n_in
    for f in (features, 2 * features):
        pool = nn.SpatialMaxPooling(2, 2)
        layers += [conv(n, f, kernel), nn.SpatialBatchNormalization(f), nn.ReLU(), pool]
        pools.append(pool)
        n = f
    for pool in reversed(pools):
        layers += [nn.SpatialMaxUnpooling(pool), conv(n, features, kernel),
                   nn.SpatialBatchNormalization(features), nn.ReLU()]
        n = features
    layers.append(conv(n, classes, 1))
    return nn.Sequential(*layers)


def labelled_index(who, labelled_frame, T):
    """``labelled_frame`` (negative: from the end) as an index into T frames, checked."""
    if not -T <= labelled_frame < T:
        raise ValueError(f"{who}: labelled_frame {labelled_frame} is outside a sequence of {T} frames")
    return labelled_frame % T


def mask_labels(labels, frame):
    """Labels (T, B, H, W) with every frame but ``frame`` set to ``UNLABELLED`` (a new array)."""
    masked = nn.get_xp(labels).full(labels.shape, UNLABELLED, dtype=labels.dtype)
    masked[frame] = labels[frame]
    return masked


def segmentation_criterion():
    """Cross-entropy (softmax over the classes, mean over a frame's labelled pixels) summed
    over the frames of a stacked (T, B, C, H, W) prediction; ``UNLABELLED`` pixels count nowhere."""
    return nn.SequencerCriterion(nn.CrossEntropyCriterion(ignoreIndex=UNLABELLED))


def class_counts(scores, labels, prefix=""):
    """Per-class pixel counts of scores (..., C, H, W) against labels (..., H, W), as 0-d arrays:
    ``correct_<class>`` (predicted and true class both that class) and ``pixels_<class>`` (true
    class that class). Sums, so they add over batches; ``accuracies`` makes the ratios."""
    xp = nn.get_xp(scores)
    onehot = labels[..., None] == xp.arange(CLASSES)
    hit = (scores.argmax(axis=-3) == labels)[..., None]
    axes = tuple(range(labels.ndim))
    correct, pixels = (onehot & hit).sum(axis=axes), onehot.sum(axis=axes)
    sums = {}
    for c, name in enumerate(CLASS_NAMES):
        sums[f"{prefix}correct_{name}"] = correct[c]
        sums[f"{prefix}pixels_{name}"] = pixels[c]
    return sums


def accuracies(result, prefix=""):
    """The paper's Table 2 figures from ``evaluate``'s result (or any dict of the counts of
    ``class_counts``): ``{class: accuracy or None}`` (None: the class never occurs), the
    class average (mean over the classes that occur) and the global accuracy (all pixels).

    ``evaluate`` divides every sum by the number of sequences; the ratios are unchanged.
    """
    per_class = {}
    for name in CLASS_NAMES:
        pixels = result[f"{prefix}pixels_{name}"]
        per_class[name] = result[f"{prefix}correct_{name}"] / pixels if pixels else None
    present = [a for a in per_class.values() if a is not None]
    total = sum(result[f"{prefix}pixels_{n}"] for n in CLASS_NAMES)
    return {"per_class": per_class,
            "class_avg": sum(present) / len(present) if present else None,
            "global": sum(result[f"{prefix}correct_{n}"] for n in CLASS_NAMES) / total if total else None}


def label_colours(labels):
    """Class indices (H, W) (host or device) as an RGB picture (H, W, 3) in [0, 1] (``PALETTE``)."""
    palette = nn.backend.host_xp.asarray(PALETTE)
    return palette[nn.to_numpy(labels)]


class LabelPropagation(OnePassBackward, nn.Container):
    """``LabelPropagation(classes, height, width, kernel=3)``: the sampler S and merging block M
    of Figure 7, applied recurrently over time (formulas and gradients: module docstring).

    Input ``[Lb, flow]``: per-frame scores Lb (T, B, classes, height, width) and the flow
    (T-1, B, 2, height/2, width/2), (y, x) in the normalised units of the half-resolution
    grid (AE-ConvLSTM-flow's T_t). Output L~ (T, B, classes, height, width), the final scores.
    M is a ``SpatialConvolution(2 classes -> classes, kernel x kernel)``, the module's only
    parameters, shared by every step. It starts as the identity on Lb (centre taps 1 on the
    Lb block, every other weight and the bias 0), so SegNet-flow starts as its own SegNet.
    The warped block's gradient, the correlation of Lw with gL~, is not 0, so the first
    update gives M a use for the warped labels, and then the flow gets the segmentation's
    gradient through them.
    """
    _transient = nn.Container._transient + ("_steps", "_grid")


    def __init__(self, classes, height, width, kernel=3):
        self.classes = check_int(self, classes, "classes")
        for name, n in (("height", height), ("width", width)):
            if check_int(self, n, name, minimum=4) % 2:
                raise ValueError(f"{self.typename()}: {name} must be even (the flow has half "
                                 f"the frames' size), got {n}")
        self.height, self.width = int(height), int(width)
        kernel = check_int(self, kernel, "kernel")
        self.merge = nn.SpatialConvolution(2 * self.classes, self.classes, kernel, kernel, 1, 1,
                                           kernel // 2, kernel // 2)
        self.merge.weight.fill(0)
        self.merge.bias.fill(0)
        diagonal = list(range(self.classes))
        self.merge.weight[diagonal, diagonal, kernel // 2, kernel // 2] = 1  # L~_t = Lb_t
        self.upsample = nn.SpatialUpSamplingNearest(2)
        self.grid = nn.GridGenerator(self.height, self.width)
        self.sampler = nn.BilinearSampler()
        super().__init__(self.merge, self.upsample, self.grid, self.sampler)
        self._steps = None  # per step t: Z_t, and for t > 0 the softmax that made P_{t-1}
        self._grid = None   # G (T-1, B, height, width, 2)

    def _scale(self, flow):
        """``s`` of the module docstring, (1, 2, 1, 1): half-resolution normalised units to full."""
        h, w = self.height // 2, self.width // 2
        s = [2 * (h - 1) / (self.height - 1), 2 * (w - 1) / (self.width - 1)]
        return nn.get_xp(flow).asarray(s, dtype=flow.dtype).reshape(1, 2, 1, 1)

    def _check(self, input):
        scores, flow = check_table(self, input, 2)
        check_array(self, scores, (5,), "scores", layout="(T, B, classes, height, width)")
        T, B = scores.shape[:2]
        want = (T, B, self.classes, self.height, self.width)
        check_shape(self, scores, want, what="scores")
        if T < 2:
            raise ValueError(f"{self.typename()}: needs at least 2 frames (one flow step), got {T}")
        check_array(self, flow, (5,), "flow", layout="(T-1, B, 2, height/2, width/2)")
        check_shape(self, flow, (T - 1, B, 2, self.height // 2, self.width // 2), what="flow")
        return scores, flow

    def updateOutput(self, input):
        scores, flow = self._check(input)
        xp = nn.get_xp(scores)
        T = scores.shape[0]
        up = self.upsample.forward(fold_time(flow)) * self._scale(flow)
        self._grid = unfold_time(self.grid.forward(up), T - 1)
        out = xp.empty(scores.shape, dtype=scores.dtype)
        warped = xp.zeros(scores.shape[1:], dtype=scores.dtype)  # Lw_{-1} = 0
        self._steps = []
        for t in range(T):
            softmax = None
            if t > 0:
                softmax = nn.SpatialSoftMax()
                warped = self.sampler.forward([softmax.forward(out[t - 1]), self._grid[t - 1]])
            z = xp.concatenate([scores[t], warped], axis=1)
            out[t] = self.merge.forward(z)
            self._steps.append((z, softmax))
        self.output = out
        return self.output

    def _backward(self, input, gradOutput, scale, params):
        scores, flow = self._check(input)
        check_shape(self, gradOutput, scores.shape)
        if self._steps is None or len(self._steps) != scores.shape[0]:
            raise ValueError(f"{self.typename()}: backward needs a forward on this input first")
        xp = nn.get_xp(scores)
        T, C = scores.shape[0], self.classes
        g_scores = xp.empty(scores.shape, dtype=scores.dtype)
        g_grid = xp.empty(self._grid.shape, dtype=scores.dtype)
        carry = 0
        for t in range(T - 1, -1, -1):
            z, softmax = self._steps[t]
            g = gradOutput[t] + carry
            gz = self.merge.backward(z, g, scale) if params else self.merge.updateGradInput(z, g)
            g_scores[t] = gz[:, :C]
            if t > 0:
                p = softmax.output
                g_p, g_grid[t - 1] = self.sampler.updateGradInput([p, self._grid[t - 1]], gz[:, C:])
                carry = softmax.updateGradInput(self.output[t - 1], g_p)
        s = self._scale(flow)
        g_up = self.grid.updateGradInput(self.upsample.output * s, fold_time(g_grid)) * s
        g_flow = unfold_time(self.upsample.updateGradInput(fold_time(flow), g_up), T - 1)
        self.gradInput = [g_scores, g_flow]
        return self.gradInput

    def extra_repr(self):
        return f"({self.classes} classes, {self.height}x{self.width})"


class _Segmenter(VideoPredictor):
    """What SegNet and SegNet-flow share: labels, the training mask, the Table 2 counts, pictures."""
    train_needs = ("labels",)
    eval_needs = ("labels",)
    picture_key = tuple(zip(CLASS_NAMES, PALETTE))

    def predict(self, batch):
        """The final class scores of every frame of the batch (T, B, C, H, W)."""
        return self._final(self.forward(batch["frames"]))

    def _labelled(self, batch):
        return labelled_index(type(self).__name__, self.labelled_frame, batch["frames"].shape[0])

    def evaluate_batch(self, batch):
        """Table 2's counts on every frame of the batch (the test split labels all of them):
        per class, pixels predicted right (``correct_<class>``) and pixels of the class
        (``pixels_<class>``), sums over the batch. ``accuracies`` turns ``evaluate``'s
        result into per-class, class-average and global accuracy."""
        sums = class_counts(self.predict(batch), batch["labels"])
        sums["sequences"] = batch["frames"].shape[1]
        return sums

    def summarize(self, means):
        """The counts and, from them, the accuracies: ``acc_<class>`` (absent for a class that
        never occurs), ``class_avg`` and ``global`` (with ``basic_`` for SegNet-flow's inner
        SegNet), so reports show the paper's figures."""
        out = dict(means)
        for prefix in ("", "basic_"):
            if f"{prefix}pixels_{CLASS_NAMES[0]}" not in means:
                continue
            acc = accuracies(means, prefix)
            out.update({f"{prefix}acc_{k}": v for k, v in acc["per_class"].items() if v is not None})
            out.update({f"{prefix}{k}": acc[k] for k in ("class_avg", "global") if acc[k] is not None})
        return out

    def _picture_scores(self):
        """(label, scores (T, B, C, H, W)) rows of the last forward to draw, in order."""
        raise NotImplementedError

    def animation_frames(self, batch):
        """Sequence 0's ground truth and final segmentation of every frame, class colours
        (T, H, W, 3): ``pictures.prediction_animation``'s hook for models that output labels."""
        pred = self.predict(batch)[:, 0].argmax(axis=1)
        return label_colours(batch["labels"][:, 0]), label_colours(pred)

    def picture_rows(self, batch):
        """Figure 8 for sequence 0, every frame: input, ground truth and each
        prediction as class colours (RGB tiles (H, W, 3), ``PALETTE``); SegNet-flow shows the
        SegNet inside it (Lb) and its final labels (L~). Call ``predict`` first."""
        ts = range(batch["frames"].shape[0])
        rows = [("input", [nn.to_numpy(batch["frames"][t, 0, 0]) for t in ts]),
                ("truth", [label_colours(batch["labels"][t, 0]) for t in ts])]
        for label, scores in self._picture_scores():
            rows.append((label, [label_colours(scores[t, 0].argmax(axis=0)) for t in ts]))
        return rows


class SegNet(OnePassBackward, _Segmenter, nn.Container):
    """SegNet alone (module docstring), a model family: ``train.py --model segnet``.

    Input frames (T, B, 1, H, W), output scores (T, B, 11, H, W), each frame on its own.
    Training sees only the labelled frame of each sequence (``labelled_frame``, default the
    last), the frames SegNet-flow gets labels for; the loss is the cross-entropy there.
    """

    def __init__(self, seg_features=16, seg_kernel=7, labelled_frame=-1):
        self.labelled_frame = int(labelled_frame)
        self.net = segnet_network(1, CLASSES, check_int(self, seg_features, "seg_features"),
                                  check_int(self, seg_kernel, "seg_kernel"))
        super().__init__(self.net)

    @property
    def min_frames(self):
        return 1

    @property
    def min_train_frames(self):
        return 1

    def split(self, batch):
        """The labelled frame alone (1, B, 1, H, W) and its labels (1, B, H, W)."""
        k = self._labelled(batch)
        return batch["frames"][k:k + 1], batch["labels"][k:k + 1]

    def make_criterion(self, loss):
        """The segmentation cross-entropy; ``loss`` (the frames' loss) does not apply."""
        return segmentation_criterion()

    @staticmethod
    def _final(output):
        return output

    def _picture_scores(self):
        return [("SegNet", self.output)]

    def updateOutput(self, input):
        check_array(self, input, (5,), layout="a stacked sequence (T, B, 1, H, W)")
        self.output = unfold_time(self.net.forward(fold_time(input)), input.shape[0])
        return self.output

    def _backward(self, input, gradOutput, scale, params):
        x, g = fold_time(input), fold_time(gradOutput)
        gx = self.net.backward(x, g, scale) if params else self.net.updateGradInput(x, g)
        self.gradInput = gx.reshape(input.shape)
        return self.gradInput


class SegNetFlow(OnePassBackward, _Segmenter, nn.Container):
    """SegNet-flow (Figure 7; module docstring): ``train.py --model segnet-flow``.

    Input frames (T, B, 1, H, W); output ``[Y~ (T-1, B, 1, H, W), L~ (T, B, 11, H, W)]``: the
    next-frame predictions of the AE-ConvLSTM-flow branch (``self.flow``, run on frames
    0..T-2) and the final class scores. ``self.segnet`` (a ``SegNet``) gives Lb,
    ``self.propagation`` (``LabelPropagation``) L~.

    Options: ``seg_features``, ``seg_kernel`` (SegNet's), ``merge_kernel`` (M's),
    ``labelled_frame`` (the frame with labels in training; negative from the end),
    ``seg_weight`` (the cross-entropy's weight in the loss), ``huber_weight`` and
    ``forget_bias`` (the flow branch's), ``init_flow``: a checkpoint of a trained
    ``ae-convlstm-flow`` (``train.py``'s) whose model becomes the flow branch (then
    ``huber_weight`` and ``forget_bias`` must be left at their defaults).
    """

    def __init__(self, height=64, width=64, seg_features=16, seg_kernel=7, merge_kernel=3,
                 labelled_frame=-1, seg_weight=1.0, huber_weight=1e-2, forget_bias=1.0, init_flow=None):
        self.labelled_frame = int(labelled_frame)
        self.seg_weight = float(seg_weight)
        self.flow = self._flow_branch(height, width, huber_weight, forget_bias, init_flow)
        self.segnet = SegNet(seg_features, seg_kernel, labelled_frame)
        self.propagation = LabelPropagation(CLASSES, height, width, merge_kernel)
        super().__init__(self.flow, self.segnet, self.propagation)

    def _flow_branch(self, height, width, huber_weight, forget_bias, init_flow):
        if init_flow is None:
            return AEConvLSTMFlow(height, width, huber_weight=huber_weight, forget_bias=forget_bias)
        if (huber_weight, forget_bias) != (1e-2, 1.0):
            raise ValueError(f"{self.typename()}: init_flow takes the flow branch from {init_flow}; "
                             f"huber_weight and forget_bias cannot be set with it")
        flow = nn.load(init_flow).get("model")
        if not isinstance(flow, AEConvLSTMFlow):
            raise ValueError(f"{self.typename()}: init_flow {init_flow} holds a "
                             f"{type(flow).__name__}, expected an AEConvLSTMFlow checkpoint")
        if (flow.grid.height, flow.grid.width) != (height // 2, width // 2):
            raise ValueError(f"{self.typename()}: init_flow {init_flow} works on "
                             f"{2 * flow.grid.height}x{2 * flow.grid.width} frames, expected "
                             f"{height}x{width}")
        return flow.float()

    @property
    def min_frames(self):
        return 2

    @property
    def min_train_frames(self):
        return 2

    def loss_terms(self):
        return self.flow.loss_terms()

    def split(self, batch):
        """All frames; targets ``[frames 1..T-1, labels masked to the labelled frame]``."""
        frames = batch["frames"]
        return frames, [frames[1:], mask_labels(batch["labels"], self._labelled(batch))]

    def make_criterion(self, loss):
        """Reconstruction (``loss``: 'bce' or 'mse') + ``seg_weight`` x the cross-entropy."""
        c = nn.ParallelCriterion()
        c.add(super().make_criterion(loss))
        return c.add(segmentation_criterion(), self.seg_weight)

    @staticmethod
    def _final(output):
        return output[1]

    def _picture_scores(self):
        return [("SegNet", self.segnet.output), ("SegNet-flow", self.output[1])]

    def evaluate_batch(self, batch):
        """Table 2's counts of L~ (``correct_<class>``, ``pixels_<class>``), of the SegNet
        inside (``basic_correct_<class>``, ...), and ``recon_bce``: the per-pixel BCE of the
        next-frame predictions, mean over frames 1..T-1 of a sequence (sum over sequences)."""
        sums = super().evaluate_batch(batch)
        sums.update(class_counts(self.segnet.output, batch["labels"], prefix="basic_"))
        frames, pred = batch["frames"], self.output[0]
        sums["recon_bce"] = per_pixel_bce(fold_time(pred), fold_time(frames[1:])).sum() / pred.shape[0]
        return sums

    def updateOutput(self, input):
        check_array(self, input, (5,), layout="a stacked sequence (T, B, 1, H, W)")
        if input.shape[0] < 2:
            raise ValueError(f"{self.typename()}: needs at least 2 frames (one flow step), "
                             f"got {input.shape[0]}")
        y = self.flow.forward(input[:-1])
        scores = self.segnet.forward(input)
        flow = unfold_time(self.flow.huber.output, input.shape[0] - 1)
        self.output = [y, self.propagation.forward([scores, flow])]
        return self.output

    def _backward(self, input, gradOutput, scale, params):
        check_table(self, gradOutput, 2, what="gradOutput")
        g_y, g_labels = gradOutput
        T = input.shape[0]
        flow = unfold_time(self.flow.huber.output, T - 1)
        prop_in = [self.segnet.output, flow]
        if params:
            g_scores, g_flow = self.propagation.backward(prop_in, g_labels, scale)
            g_in = self.segnet.backward(input, g_scores, scale).copy()
        else:
            g_scores, g_flow = self.propagation.updateGradInput(prop_in, g_labels)
            g_in = self.segnet.updateGradInput(input, g_scores).copy()
        g_in[:-1] += self.flow._backward(input[:-1], g_y, scale, params, gradFlow=fold_time(g_flow))
        self.gradInput = g_in
        return self.gradInput
