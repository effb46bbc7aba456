"""``benchmarks/gemm_bound.py`` sees every matrix product of a convolution, counts its
FLOPs right and puts ``numpy.matmul`` back, whatever the step does."""
import numpy
import pytest

from benchmarks.gemm_bound import product_flops, record_products
from nnlite import conv_ops


@pytest.fixture
def im2col_only(monkeypatch):
    monkeypatch.setattr(conv_ops, "FORWARD_PATH", "columns")
    monkeypatch.setattr(conv_ops, "BACKWARD_PATH", "columns")


def test_the_recorder_sees_each_product_of_a_convolution(rng, im2col_only):
    x = rng.random((2, 3, 6, 5), dtype=numpy.float32)
    w = rng.random((4, 3, 3, 3), dtype=numpy.float32)
    gy = rng.random((2, 4, 6, 5), dtype=numpy.float32)
    gw = numpy.zeros_like(w)

    def step():
        conv_ops.conv2d(x, w, None, padH=1, padW=1)
        conv_ops.conv2d_backward(gy, w, x.shape, x, gw, None, padH=1, padW=1)

    matmul = numpy.matmul
    _, calls = record_products(step)
    # forward W2 @ cols; backward gy @ cols^T (dL/dW), then W2^T @ gy (dL/dx)
    assert [(a.shape, b.shape) for a, b, _ in calls] == [((4, 27), (27, 60)), ((4, 60), (60, 27)),
                                                          ((27, 4), (4, 60))]
    assert numpy.matmul is matmul


def test_matmul_is_restored_when_the_step_fails():
    matmul = numpy.matmul

    def failing():
        numpy.matmul(numpy.ones((2, 2)), numpy.ones((2, 2)))
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError):
        record_products(failing)
    assert numpy.matmul is matmul


def test_product_flops_counts_each_matrix_of_a_batch():
    a, b = numpy.empty((7, 16, 70)), numpy.empty((70, 5))  # b broadcast over a's batch of 7
    assert product_flops(a, b) == 2 * 7 * 16 * 70 * 5
    assert product_flops(numpy.empty((3, 4)), numpy.empty((4, 2))) == 2 * 3 * 4 * 2
