"""Tests of cascadevae_ext.bernoulli_loglik, the fused Bernoulli log-likelihood.

Reference: -F.binary_cross_entropy_with_logits(...).sum(-1) computed by torch in float64
from the same float32 inputs.

Tolerance: the kernel evaluates each pixel term x*l - softplus(l) in float32 (within
about 3 ulp of the term) and sums in double, so its error is bounded by a few float32
ulps of the sum of the magnitudes of what is added. We allow

    |out - ref| <= RTOL * sum_p (|x l| + softplus(l)) + ATOL_PER_PIXEL * P

with RTOL = 2e-6 (about 30 float32 ulps, i.e. what a float32 summation of the row would
already lose) and ATOL_PER_PIXEL = 1e-30 (exp(-|l|) is flushed to 0 for |l| > 87: an
absolute error below 2e-38 per pixel). The magnitude sum is used rather than |ref|
because the torch float64 reference itself cancels x*l against softplus(l). A tighter
check against a cancellation-free float64 formula is in test_precision_beyond_torch.
"""

import threading

import numpy as np
import pytest
import torch

import cascadevae_ext as ext
from conftest import loglik_magnitude64, loglik_reference64

RTOL = 2e-6
ATOL_PER_PIXEL = 1e-30


def assert_close(out, logits, x):
    ref = loglik_reference64(logits, x)
    P = np.shape(logits)[2]
    assert out.shape == ref.shape
    tol = RTOL * loglik_magnitude64(logits, x) + ATOL_PER_PIXEL * P
    err = np.abs(out.astype(np.float64) - ref)
    assert np.all(err <= tol), f"max err {err.max():.3g}, worst err/tol {np.max(err / tol):.3g}"


def make(B, S, P, *, scale=3.0, x_kind="binary", seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((B, S, P)) * scale).astype(np.float32)
    if x_kind == "binary":
        x = (rng.random((B, P)) < 0.4).astype(np.float32)
    else:
        x = rng.random((B, P)).astype(np.float32)
    return logits, x


def with_extremes(logits, seed=1):
    """Sprinkle +-80, +-1e4 and values around the exp cutoff (87) into logits."""
    rng = np.random.default_rng(seed)
    flat = logits.reshape(-1).copy()
    n = flat.size
    for value, count in ((80.0, n // 20), (-80.0, n // 20), (1e4, 3), (-1e4, 3), (87.0, 2), (-87.0, 2),
                         (87.5, 2), (-87.5, 2), (-100.0, 2), (100.0, 2)):
        flat[rng.integers(0, n, max(count, 1))] = value
    return flat.reshape(logits.shape)


# ---- values ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 3, 100), (3, 10, 1024), (2, 2, 4097), (5, 1, 33), (1, 7, 31), (2, 3, 64)])
@pytest.mark.parametrize("x_kind", ["binary", "fractional"])
def test_matches_torch(shape, x_kind):
    logits, x = make(*shape, x_kind=x_kind)
    out = ext.bernoulli_loglik(logits, x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.flags.c_contiguous
    assert_close(out, logits, x)


@pytest.mark.parametrize("x_kind", ["binary", "fractional"])
@pytest.mark.parametrize("scale", [0.01, 1.0, 20.0, 80.0])
def test_extreme_logits(x_kind, scale):
    logits, x = make(3, 4, 777, scale=scale, x_kind=x_kind, seed=2)
    logits = with_extremes(logits)
    out = ext.bernoulli_loglik(logits, x)
    assert np.all(np.isfinite(out))
    assert_close(out, logits, x)


def test_all_extreme_rows():
    # rows made only of +-80 / +-1e4 logits, against targets that agree or disagree
    P = 50
    logits = np.array([[[80.0] * P, [-80.0] * P, [1e4] * P, [-1e4] * P]], np.float32).repeat(2, axis=0)
    x = np.stack([np.ones(P, np.float32), np.zeros(P, np.float32)])
    out = ext.bernoulli_loglik(logits, x)
    assert_close(out, logits, x)
    # x = 1 with l = +1e4 and x = 0 with l = -1e4 are (almost) certain: log-likelihood ~ 0
    assert abs(out[0, 2]) < 1e-30 and abs(out[1, 3]) < 1e-30
    # the opposite targets cost |l| per pixel
    np.testing.assert_allclose(out[0, 3], -1e4 * P, rtol=1e-6)
    np.testing.assert_allclose(out[1, 2], -1e4 * P, rtol=1e-6)


def test_precision_beyond_torch():
    """Against a cancellation-free float64 formula, per row relative to sum |term|."""
    logits, x = make(4, 3, 3000, scale=15.0, x_kind="fractional", seed=3)
    logits = with_extremes(logits)
    x[0] = 1.0 - x[0] * 1e-3  # targets close to 1: x*l and max(l, 0) nearly cancel
    x[1] = (x[1] < 0.5).astype(np.float32)
    l64, x64 = logits.astype(np.float64), x.astype(np.float64)[:, None, :]
    terms = (x64 - (l64 > 0)) * l64 - np.log1p(np.exp(-np.abs(l64)))
    ref = terms.sum(-1)
    out = ext.bernoulli_loglik(logits, x).astype(np.float64)
    tol = 5e-7 * np.abs(terms).sum(-1) + ATOL_PER_PIXEL * logits.shape[2]
    assert np.all(np.abs(out - ref) <= tol), np.max(np.abs(out - ref) / tol)


def test_single_pixel_terms_are_accurate():
    """P = 1: every output is one term; within 4 float32 ulps of it (|l| <= 87)."""
    l = np.concatenate([np.linspace(-87, 87, 20001), np.random.default_rng(4).standard_normal(5000) * 10])
    l = l.astype(np.float32)
    for x_val in (0.0, 1.0, 0.3):
        x = np.full((l.size, 1), x_val, np.float32)
        out = ext.bernoulli_loglik(l.reshape(-1, 1, 1), x)[:, 0].astype(np.float64)
        l64 = l.astype(np.float64)
        ref = (x_val - (l64 > 0)) * l64 - np.log1p(np.exp(-np.abs(l64)))
        ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
        assert np.max(np.abs(out - ref) / ulp) <= 4.0


def test_nan_logit_is_refused_naming_its_position():
    logits, x = make(3, 2, 40, x_kind="fractional")
    logits[2, 1, 3] = np.nan
    logits[1, 0, 7] = np.nan  # the first in (b, k, p) order is named
    with pytest.raises(ValueError, match=r"logits\[1, 0, 7\] is nan"):
        ext.bernoulli_loglik(logits, x)
    bits = torch.from_numpy(logits).bfloat16()  # bfloat16 NaNs too
    with pytest.raises(ValueError, match=r"logits\[1, 0, 7\] is nan"):
        ext.bernoulli_loglik(bits, x)
    strided = np.zeros((3, 2, 80), np.float32)[:, :, ::2]
    strided[0, 1, 39] = np.nan
    with pytest.raises(ValueError, match=r"logits\[0, 1, 39\] is nan"):
        ext.bernoulli_loglik(strided, x)
    with pytest.raises(ValueError, match=r"logits\[1, 0, 7\] is nan"):
        ext._bernoulli_loglik_simd(logits, x, "generic")


@pytest.mark.parametrize("value,shown", [(1.5, "= 1.5 is outside"), (-0.25, "= -0.25 is outside"),
                                         (np.nan, "is nan"), (np.inf, "= inf is outside"),
                                         (1.0000001, "= 1.0000001 is outside")], ids=repr)
def test_targets_outside_unit_interval_are_refused(value, shown):
    logits, x = make(3, 2, 40, x_kind="fractional")
    x[2, 5] = 3.0
    x[1, 17] = value  # the first in (b, p) order is named
    with pytest.raises(ValueError, match=r"x\[1, 17\] " + shown.replace("+", r"\+")) as info:
        ext.bernoulli_loglik(logits, x)
    assert "[0, 1]" in str(info.value)
    with pytest.raises(ValueError, match=r"x\[1, 17\]"):
        ext.bernoulli_loglik(logits, np.asfortranarray(x))  # strided targets are checked too
    with pytest.raises(ValueError, match=r"x\[1, 17\].*after rounding to float32"):
        ext.bernoulli_loglik(logits, x.astype(np.float64))


def test_targets_at_the_ends_and_signed_zero_are_accepted():
    logits, x = make(3, 2, 40, x_kind="fractional")
    x[0, :3] = [0.0, -0.0, 1.0]
    x[1, 0] = np.nextafter(np.float32(1), np.float32(0))
    x[2, 0] = np.float32(1e-45)  # the smallest positive (subnormal) float32
    assert_close(ext.bernoulli_loglik(logits, x), logits, x)


def test_infinite_logits():
    # -inf where the target disagrees with an infinite logit (the true value), NaN where it
    # agrees (0 * inf). torch gives NaN in three of the four cases.
    logits = np.array([[[np.inf], [-np.inf]], [[np.inf], [-np.inf]], [[np.inf], [-np.inf]]], np.float32)
    x = np.array([[1.0], [0.0], [0.5]], np.float32)
    out = ext.bernoulli_loglik(logits, x)
    expected = np.array([[np.nan, -np.inf], [-np.inf, np.nan], [-np.inf, -np.inf]], np.float32)
    np.testing.assert_array_equal(out, expected)


# ---- layouts and argument types --------------------------------------------------------

def test_torch_tensors_and_requires_grad():
    logits, x = make(3, 4, 129, x_kind="fractional")
    lt = torch.from_numpy(logits).requires_grad_()
    xt = torch.from_numpy(x).requires_grad_()
    out = ext.bernoulli_loglik(lt, xt)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert_close(out, logits, x)
    np.testing.assert_array_equal(out, ext.bernoulli_loglik(logits, x))


def test_noncontiguous_torch():
    logits, x = make(3, 4, 65, x_kind="fractional", seed=5)
    expected = ext.bernoulli_loglik(logits, x)
    # pixel axis strided: stored as (B, P, S) and transposed
    l_bps = torch.from_numpy(np.ascontiguousarray(logits.transpose(0, 2, 1))).transpose(1, 2)
    # batch and code axes permuted, pixels contiguous
    l_sbp = torch.from_numpy(np.ascontiguousarray(logits.transpose(1, 0, 2))).transpose(0, 1)
    # x stored as (P, B)
    x_pb = torch.from_numpy(np.ascontiguousarray(x.T)).t()
    for lt in (l_bps, l_sbp):
        assert not lt.is_contiguous()
        for xt in (x_pb, torch.from_numpy(x)):
            out = ext.bernoulli_loglik(lt, xt)
            np.testing.assert_array_equal(out, expected)
    # every other pixel of a wider tensor
    wide = torch.from_numpy(np.repeat(logits, 2, axis=2))[:, :, ::2]
    xwide = torch.from_numpy(np.repeat(x, 2, axis=1))[:, ::2]
    np.testing.assert_array_equal(ext.bernoulli_loglik(wide, xwide), expected)
    # expanded (stride 0) code axis
    one = torch.from_numpy(logits[:, :1, :]).expand(-1, 5, -1)
    out = ext.bernoulli_loglik(one, x)
    assert out.shape == (3, 5)
    np.testing.assert_array_equal(out, np.repeat(expected[:, :1], 5, axis=1))


def test_noncontiguous_numpy():
    big_l, big_x = make(6, 8, 300, x_kind="fractional", seed=6)
    cases = [
        (big_l[::2, 1::3, ::3], big_x[::2, ::3]),          # strided everywhere
        (big_l[:, ::-1, :], big_x),                         # negative code stride
        (big_l[::-1, :, ::-2], big_x[::-1, ::-2]),          # negative pixel stride
        (np.asfortranarray(big_l), np.asfortranarray(big_x)),
        (big_l[:, :, 10:250], big_x[:, 10:250]),            # offset slice
    ]
    for l, x in cases:
        expected = ext.bernoulli_loglik(np.ascontiguousarray(l), np.ascontiguousarray(x))
        out = ext.bernoulli_loglik(l, x)
        np.testing.assert_array_equal(out, expected)
        assert_close(out, l, x)
    # broadcast x (stride 0 on the batch axis)
    xb = np.broadcast_to(big_x[:1], big_x.shape)
    np.testing.assert_array_equal(ext.bernoulli_loglik(big_l, xb),
                                  ext.bernoulli_loglik(big_l, np.ascontiguousarray(xb)))
    # byte strides that are not whole elements (a packed record array) are copied
    rec = np.zeros((2, 3, 5), dtype=[("a", np.int8), ("l", np.float32)])
    rec["l"] = big_l[:2, :3, :5]
    np.testing.assert_array_equal(ext.bernoulli_loglik(rec["l"], big_x[:2, :5]),
                                  ext.bernoulli_loglik(big_l[:2, :3, :5], big_x[:2, :5]))


def test_float64_x_is_rounded_to_float32():
    logits, x = make(2, 3, 50, x_kind="fractional")
    x64 = x.astype(np.float64) + 1e-12
    np.testing.assert_array_equal(ext.bernoulli_loglik(logits, x64), ext.bernoulli_loglik(logits, x))
    np.testing.assert_array_equal(ext.bernoulli_loglik(torch.from_numpy(logits), torch.from_numpy(x64)),
                                  ext.bernoulli_loglik(logits, x))


# ---- sizes ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 5, 1), (4, 1, 1), (1, 1, 1000), (7, 1, 20), (1, 3, 20)])
def test_size_one_axes(shape):
    logits, x = make(*shape, x_kind="fractional", seed=7)
    out = ext.bernoulli_loglik(logits, x)
    assert out.shape == shape[:2]
    assert_close(out, logits, x)


def test_zero_pixels_gives_zeros():
    out = ext.bernoulli_loglik(np.zeros((3, 4, 0), np.float32), np.zeros((3, 0), np.float32))
    assert out.shape == (3, 4) and out.dtype == np.float32
    assert np.all(out == 0)


@pytest.mark.parametrize("shape", [(0, 3, 10), (3, 0, 10), (0, 0, 0)])
def test_empty_batch_or_codes(shape):
    B, S, P = shape
    out = ext.bernoulli_loglik(np.zeros(shape, np.float32), np.zeros((B, P), np.float32))
    assert out.shape == (B, S) and out.dtype == np.float32


# ---- threads and SIMD variants ----------------------------------------------------------

def test_thread_count_does_not_change_result():
    logits, x = make(16, 4, 4096, x_kind="fractional", seed=8)
    logits = with_extremes(logits)
    one = ext.bernoulli_loglik(logits, x, num_threads=1)
    assert_close(one, logits, x)
    for t in (2, 0, 3, 64):
        np.testing.assert_array_equal(ext.bernoulli_loglik(logits, x, num_threads=t), one)


def test_simd_variants_agree():
    info = ext._loglik_simd()
    assert info["selected"] in info["available"] and "generic" in info["available"]
    logits, x = make(5, 3, 1000, x_kind="fractional", seed=9)
    logits = with_extremes(logits)
    results = {v: ext._bernoulli_loglik_simd(logits, x, v) for v in info["available"]}
    for out in results.values():
        assert_close(out, logits, x)
    np.testing.assert_array_equal(ext._bernoulli_loglik_simd(logits, x, "auto"), results[info["selected"]])
    np.testing.assert_array_equal(ext.bernoulli_loglik(logits, x), results[info["selected"]])
    if "avx2" in results and "avx512" in results:  # both use FMA and the same summation order
        np.testing.assert_array_equal(results["avx2"], results["avx512"])
    with pytest.raises(ValueError, match="unknown simd"):
        ext._bernoulli_loglik_simd(logits, x, "neon")


def test_concurrent_python_threads():
    logits, x = make(8, 4, 2048, x_kind="fractional", seed=10)
    expected = ext.bernoulli_loglik(logits, x, num_threads=1)
    results = [None] * 4

    def work(i):
        results[i] = ext.bernoulli_loglik(logits, x, num_threads=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


# ---- bad input --------------------------------------------------------------------------

def test_bad_arguments():
    logits, x = make(2, 3, 10)
    with pytest.raises(TypeError, match="logits must be a numpy array or a CPU torch tensor, got list"):
        ext.bernoulli_loglik(logits.tolist(), x)
    with pytest.raises(TypeError, match="x must be a numpy array or a CPU torch tensor, got NoneType"):
        ext.bernoulli_loglik(logits, None)
    with pytest.raises(TypeError, match="logits has dtype float64; expected float32"):
        ext.bernoulli_loglik(logits.astype(np.float64), x)
    with pytest.raises(TypeError, match="logits has dtype int32; expected float32"):
        ext.bernoulli_loglik(logits.astype(np.int32), x)
    with pytest.raises(TypeError, match="logits has dtype torch.float16"):
        ext.bernoulli_loglik(torch.from_numpy(logits).half(), x)
    with pytest.raises(TypeError, match="logits has dtype float64; expected float32"):
        ext.bernoulli_loglik(torch.from_numpy(logits).double(), x)
    with pytest.raises(TypeError, match="x has dtype uint8"):
        ext.bernoulli_loglik(logits, x.astype(np.uint8))
    with pytest.raises(TypeError, match="x has dtype bool"):
        ext.bernoulli_loglik(logits, x > 0)
    with pytest.raises(ValueError, match=r"logits must have shape \(B, S, P\), got 2 dimensions, shape \(2, 30\)"):
        ext.bernoulli_loglik(logits.reshape(2, 30), x)
    with pytest.raises(ValueError, match=r"logits must have shape \(B, S, P\), got 4 dimensions"):
        ext.bernoulli_loglik(logits[None], x)
    with pytest.raises(ValueError, match=r"x must have shape \(B, P\), got 1 dimensions, shape \(20,\)"):
        ext.bernoulli_loglik(logits, x.reshape(-1))
    with pytest.raises(ValueError, match=r"x must have shape \(B, P\), got 3 dimensions"):
        ext.bernoulli_loglik(logits, x[:, None, :])
    with pytest.raises(ValueError, match=r"x has shape \(3, 10\) but logits has shape \(2, 3, 10\), so x must have shape \(B, P\) = \(2, 10\)"):
        ext.bernoulli_loglik(logits, np.zeros((3, 10), np.float32))
    with pytest.raises(ValueError, match=r"x has shape \(2, 11\) but logits has shape \(2, 3, 10\)"):
        ext.bernoulli_loglik(logits, np.zeros((2, 11), np.float32))
    with pytest.raises(ValueError, match="num_threads = -1 is negative"):
        ext.bernoulli_loglik(logits, x, num_threads=-1)
    with pytest.raises(TypeError):
        ext.bernoulli_loglik(logits, x, 2)  # num_threads is keyword-only
    with pytest.raises(TypeError, match="x must be a numpy array or a CPU torch tensor, got float"):
        ext.bernoulli_loglik(logits, 1.0)
