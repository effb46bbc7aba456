"""``AbstractLSTM``: the LSTM equations and their BPTT, written once for the
fully connected ``LSTM`` and the convolutional ``ConvLSTM``.

The two differ only in the maps from the input and from the previous output to
the gate pre-activations (matrix products or convolutions), which a subclass
supplies.
"""
from ..backend import fuse, get_xp
from .base import AbstractRecurrent, fold_time


def _sigmoid(xp, a):
    """``(1 + tanh(a / 2)) / 2``: the logistic function, never overflowing."""
    return (xp.tanh(a * 0.5) + 1) * 0.5


@fuse
def _cell_forward(xp, a_i, a_f, a_g, a_o, c_prev, p_i, p_f, p_o):
    """One step's elementwise work, one kernel on a GPU: (i, f, g, o, c, tanh c, h).
    A missing state or peephole is passed as the scalar 0."""
    i = _sigmoid(xp, a_i + p_i * c_prev)
    f = _sigmoid(xp, a_f + p_f * c_prev)
    g = xp.tanh(a_g)
    c = f * c_prev + i * g
    o = _sigmoid(xp, a_o + p_o * c)
    tc = xp.tanh(c)
    return i, f, g, o, c, tc, o * tc


@fuse
def _cell_backward(xp, dh, dc_next, i, f, g, o, c_prev, tc, p_i, p_f, p_o):
    """One step's elementwise backward, one kernel on a GPU: (da_i, da_f, da_g, da_o,
    dc_{t-1}) from the equations of ``AbstractLSTM``; a missing term is the scalar 0."""
    da_o = dh * tc * (o * (1 - o))
    dc = dc_next + dh * o * (1 - tc * tc) + da_o * p_o
    da_i = dc * g * (i * (1 - i))
    da_g = dc * i * (1 - g * g)
    da_f = dc * c_prev * (f * (1 - f))
    return da_i, da_f, da_g, da_o, dc * f + da_i * p_i + da_f * p_f


class AbstractLSTM(AbstractRecurrent):
    """An LSTM over a whole sequence, with BPTT.

    Forward, for t = 0 .. T-1, with ``Wx *`` and ``Wh *`` the input and hidden maps
    (matrix products for ``LSTM``, convolutions for ``ConvLSTM``)::

        A_t = Wx * x_t + b + Wh * h_{t-1}        (B, 4, out, ...): blocks i, f, g, o
        i = sigmoid(a_i + p_i c_{t-1})   f = sigmoid(a_f + p_f c_{t-1})   g = tanh(a_g)
        c_t = f c_{t-1} + i g
        o = sigmoid(a_o + p_o c_t)
        h_t = o tanh(c_t)

    The peephole terms ``p`` (diagonal weights, rnn's LSTM) exist only when
    ``weightPeephole`` (3, out), rows (p_i, p_f, p_o), is set. The hidden map is
    skipped when ``h_{t-1}`` is the default zero state (step 0 without ``h0``), and
    the ``f c_{t-1}`` terms when ``c_{t-1}`` is.

    Backward, in reverse time order, with ``gy_t = dL/dh_t`` from the layers above
    and ``dh'``, ``dc'`` the gradients coming back from step t+1 (zero at t = T-1)::

        dh_t   = gy_t + dh'
        da_o   = dh_t tanh(c_t) o (1 - o)
        dc_t   = dc' + dh_t o (1 - tanh(c_t)^2) + da_o p_o      (c_t reaches h_t, c_{t+1}, o_t)
        da_i   = dc_t g i (1 - i)
        da_g   = dc_t i (1 - g^2)
        da_f   = dc_t c_{t-1} f (1 - f)
        dc_{t-1} (sent back) = dc_t f + da_i p_i + da_f p_f
        dh_{t-1} (sent back) = Wh^T * dA_t                       (transposed hidden map)
        dx_t   = Wx^T * dA_t
        dWx += dA_t (x) x_t,  db += sum dA_t,  dWh += dA_t (x) h_{t-1}   (summed over t)
        dp_i += sum_batch da_i c_{t-1},  dp_f += sum_batch da_f c_{t-1},  dp_o += sum_batch da_o c_t

    where ``(x)`` is the parameter gradient of the map (an outer product summed
    over the batch, or the convolution's weight gradient). At t = 0 the state sent
    back is ``gradH0``, ``gradC0`` when the user set ``h0``, ``c0``.

    The cache keeps, per step, the four gate activations ``(i, f, g, o)``, ``c_t``
    and ``tanh(c_t)``; ``h_t`` is the output. Nothing the size of an im2col buffer
    is kept: backward recomputes them. Each step's elementwise work forward, and
    backward, is one fused function (``backend.fuse``: one kernel with CuPy, the same
    Python arithmetic on NumPy).

    A subclass writes ``_input_preactivation(x, fresh)`` (a list of T arrays
    (B, 4, out, ...), one map over all steps at once), ``_hidden_preactivation(h)``,
    ``_input_backward(x, dA, fresh, need_input, scale)`` (all T steps at once: the
    input map does not feed the recurrence, so its backward waits until the reverse
    pass has produced every ``dA_t`` and then costs one GEMM for ``dx`` and one for
    ``dWx``) and ``_hidden_backward(h_prev, dA, need_input, scale)``: each
    returns the gradient of its map's input when ``need_input`` and, unless
    ``scale`` is None, accumulates its parameter gradients. The reverse pass calls
    ``_hidden_backward`` per step for ``dh_{t-1}`` alone, then once over all steps for
    ``dWh`` (h_{t-1} and dA_t for t >= 1 stacked: ``H[:-1]`` and ``dA[1:]``, plus t = 0 for
    a user-set h0): one map over T - 1 batches instead of T - 1 small ones, each of which,
    for the fully connected LSTM, wrote its own full-size (4 out, out) term. ``fresh`` is
    True when the sequence starts from no state at all (``UntiedConvLSTM`` then runs its
    own first step).
    """
    parameter_names = ("weight", "bias", "weightHidden")
    weightPeephole = None

    def _forward_sequence(self, x, h, c):
        xp = get_xp(x)
        fresh = h is None and c is None
        pre = self._input_preactivation(x, fresh)
        H = xp.empty((x.shape[0],) + self._state_shape(x), dtype=x.dtype)
        cs, tcs = [], []
        gates = []
        for t, a in enumerate(pre):
            if h is not None:
                a += self._hidden_preactivation(h).reshape(a.shape)
            *gate, c, tc, H[t] = _cell_forward(a[:, 0], a[:, 1], a[:, 2], a[:, 3],
                                               0 if c is None else c, *self._peepholes())
            h = H[t]
            if self.train:
                gates.append(tuple(gate))
                cs.append(c)
                tcs.append(tc)
        return H, c, dict(gates=gates, c=cs, tc=tcs, fresh=fresh)

    def _peepholes(self):
        """(p_i, p_f, p_o): the peephole rows, or three zeros without peepholes."""
        p = self.weightPeephole
        return (0, 0, 0) if p is None else (p[0], p[1], p[2])

    def _bptt(self, gy, need_input, scale):
        """The reverse-time pass; returns dL/dx (T, B, ...) when ``need_input``, else None."""
        k = self._cache
        x, H, fresh = k["x"], k["h"], k["fresh"]
        xp = get_xp(x)
        p = self.weightPeephole
        dA_all = self._gate_gradients(xp, x.shape[0], k["gates"][0][0])
        # state gradients from a later step (step mode); None at the end of a sequence
        dh_next, dc_next = k.get("dh_in"), k.get("dc_in")
        for t in range(x.shape[0] - 1, -1, -1):
            c, tc = k["c"][t], k["tc"][t]
            c_prev = k["c"][t - 1] if t else k["c0"]
            h_prev = H[t - 1] if t else k["h0"]
            dh = gy[t] if dh_next is None else gy[t] + dh_next
            dA = dA_all[t]
            *da, dc_prev = _cell_backward(dh, 0 if dc_next is None else dc_next, *k["gates"][t],
                                          0 if c_prev is None else c_prev, tc, *self._peepholes())
            xp.stack(da, axis=1, out=dA)
            if p is not None and scale is not None:
                self._acc_peephole(dA, c_prev, c, scale)
            # at t = 0 the state gradients are only wanted for a user-set h0, c0
            want_dh = t > 0 or (need_input and k["user_h"])
            want_dc = t > 0 or (need_input and k["user_c"])
            dh_next = None
            if h_prev is not None and want_dh:
                dh_next = self._hidden_backward(h_prev, dA, True, None)
            dc_next = dc_prev if c_prev is not None and want_dc else None
        if scale is not None:  # dWh over every step at once: h_{t-1} for t >= 1 is H[t - 1]
            if x.shape[0] > 1:
                self._hidden_backward(fold_time(H[:-1]), fold_time(dA_all[1:]), False, scale)
            if k["h0"] is not None:
                self._hidden_backward(k["h0"], dA_all[0], False, scale)
        dX = self._input_backward(x, dA_all, fresh, need_input, scale)
        if need_input:
            self._write_initial_gradients(dh_next, dc_next)
        return dX

    @staticmethod
    def _gate_gradients(xp, T, i0):
        """Room for every step's dA, (T, B, 4, out, ...) given one gate ``i0`` (B, out, ...):
        batch-major, the layout in which the fully connected input map's backward reads it."""
        return xp.empty((T, i0.shape[0], 4) + i0.shape[1:], dtype=i0.dtype)

    def _acc_peephole(self, dA, c_prev, c, scale):
        gp = self.gradWeightPeephole
        if c_prev is not None:
            gp[0] += scale * (dA[:, 0] * c_prev).sum(axis=0)
            gp[1] += scale * (dA[:, 1] * c_prev).sum(axis=0)
        gp[2] += scale * (dA[:, 3] * c).sum(axis=0)
