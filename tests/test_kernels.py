"""cascadevae.kernels on the CPU: dispatch by device and the errors of the CUDA path that can be
raised without a GPU (mixed devices, unsupported devices, dtypes, layouts, a build without
CUDA); the shared-memory size of the CUDA assign; and the CUDA likelihood kernel's per-pixel
accumulators run on the host. The kernels themselves are tested on a GPU in tests/test_gpu.py.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cascadevae_ext as ce
from cascadevae import kernels
from cascadevae.models.discrete import one_hot_codes
from assign_helpers import make_instance, objective
from conftest import loglik_magnitude64, loglik_reference64

NO_CUDA = "no CUDA kernels"
CUDA_BUILD = bool(ce.build_info()["cuda_compiled"])


# ---- dispatch on the CPU ----------------------------------------------------------------------

def test_assign_on_cpu_follows_input_type():
    u, lam = make_instance("A", 64, 10, seed=3)
    want = objective(u, lam, ce.assign(u, lam))
    got = kernels.assign(u, lam)
    assert isinstance(got, np.ndarray) and objective(u, lam, got) == want
    t = kernels.assign(torch.from_numpy(u), lam)
    assert torch.is_tensor(t) and t.dtype == torch.int64 and objective(u, lam, t.numpy()) == want
    labels, prices = kernels.assign(torch.from_numpy(u), lam, "ssp", return_prices=True)
    assert torch.is_tensor(labels) and prices.dtype == torch.float64
    assert ce.check_prices(u, lam, labels.numpy(), prices.numpy())
    batch = np.stack([u, u[::-1].copy()])
    assert kernels.assign(torch.from_numpy(batch), lam).shape == (2, 64)


def test_loglik_on_cpu_follows_input_type():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4, 50)).astype(np.float32)
    x = (rng.random((3, 50)) < 0.5).astype(np.float32)
    want = ce.bernoulli_loglik(logits, x)
    got = kernels.bernoulli_loglik(logits, x)
    assert isinstance(got, np.ndarray) and np.array_equal(got, want)
    t = kernels.bernoulli_loglik(torch.from_numpy(logits), torch.from_numpy(x))
    assert torch.is_tensor(t) and np.array_equal(t.numpy(), want)


def test_loglik_torch_formula_for_logits_the_kernels_do_not_take():
    """float64 and float16 logits get the same formula in torch, in their dtype (numpy in,
    numpy out); what is no float array still reaches the kernel, which names it."""
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 4, 50, generator=g, dtype=torch.float64) * 5
    x = (torch.rand(3, 50, generator=g) > 0.5).double()
    out = kernels.bernoulli_loglik(logits, x)
    assert out.dtype == torch.float64 and torch.equal(out, kernels.bernoulli_loglik_torch(logits, x))
    assert torch.allclose(out, torch.from_numpy(loglik_reference64(logits, x)), rtol=1e-12)
    got = kernels.bernoulli_loglik(logits.numpy(), x.numpy())
    assert isinstance(got, np.ndarray) and np.array_equal(got, out.numpy())
    half = kernels.bernoulli_loglik(logits.half(), x.float())
    assert half.dtype == torch.float16
    assert not kernels.bernoulli_loglik(logits.requires_grad_(), x).requires_grad  # no gradient
    with pytest.raises(ValueError, match=r"x \(B, P\), got \(3, 4, 50\) and \(3, 49\)"):
        kernels.bernoulli_loglik(logits, x[:, 1:])
    with pytest.raises(TypeError, match="logits has dtype int32"):
        kernels.bernoulli_loglik(np.zeros((2, 3, 5), np.int32), np.zeros((2, 5), np.float32))


def test_loglik_dispatch_decision():
    f32, bf16, f64 = (torch.zeros(1, 1, 1, dtype=d) for d in (torch.float32, torch.bfloat16, torch.float64))
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert kernels._native_loglik_takes(f32, cpu) and kernels._native_loglik_takes(bf16, cpu)
    assert kernels._native_loglik_takes(np.zeros((1, 1, 1), np.float32), cpu)
    assert not kernels._native_loglik_takes(f64, cpu) and not kernels._native_loglik_takes(f64, cuda)
    assert kernels._native_loglik_takes(f32, cuda) == kernels.HAVE_CUDA_KERNELS


def test_cuda_logits_in_a_build_without_cuda_kernels_take_the_torch_formula(monkeypatch):
    monkeypatch.setattr(kernels, "HAVE_CUDA_KERNELS", False)
    assert not kernels._native_loglik_takes(torch.zeros(1, 1, 1), torch.device("cuda"))


def test_code_loglik_runs_the_one_entry_point_with_torchs_threads(monkeypatch):
    """The discrete step's likelihood goes through kernels.bernoulli_loglik, whose CPU kernel
    gets as many threads as torch uses; the result is the kernel's, bit for bit."""
    from cascadevae.models import MODELS, build_model
    from cascadevae.models.discrete import code_loglik

    seen = []
    real = ce.bernoulli_loglik

    def spy(logits, x, *, num_threads=0):
        seen.append(num_threads)
        return real(logits, x, num_threads=num_threads)

    torch.manual_seed(0)
    model = build_model(MODELS["cascade"].Config(latent_dim=5, num_classes=3), 32)
    x = (torch.rand(4, 1, 32, 32) > 0.6).float()
    z = torch.randn(4, 5)
    monkeypatch.setattr(ce, "bernoulli_loglik", spy)
    u = code_loglik(model, x, z)
    assert seen == [torch.get_num_threads()]
    with torch.no_grad():
        logits = model.decoder.score_all_codes(z)
    assert torch.equal(u, torch.from_numpy(real(logits, x.reshape(4, -1))))
    u64 = code_loglik(model.double(), x.double(), z.double())
    assert u64.dtype == torch.float64 and len(seen) == 1  # the torch formula, not the kernel


def test_one_python_assign():
    """kernels.assign is the package's one assign (cascadevae.assignment keeps the lambda'
    conventions and the certificate functions only)."""
    from cascadevae import assignment
    from cascadevae.models import discrete

    assert not hasattr(assignment, "assign")
    assert discrete.kernels.assign is kernels.assign
    assert assignment.check_prices is ce.check_prices


def test_device_method_needs_cuda_tensor():
    with pytest.raises(ValueError, match="needs u on a CUDA device"):
        kernels.assign(torch.rand(5, 3), 0.1, "device")


# ---- errors of the device path -----------------------------------------------------------------

def test_mixed_devices_are_refused():
    with pytest.raises(ValueError, match=r"different devices \(logits on cpu, x on meta\)"):
        kernels.bernoulli_loglik(torch.zeros(2, 3, 5), torch.zeros(2, 5, device="meta"))
    with pytest.raises(ValueError, match="different devices"):
        kernels.bernoulli_loglik(np.zeros((2, 3, 5), np.float32), torch.zeros(2, 5, device="meta"))


def test_unsupported_device_is_refused():
    with pytest.raises(ValueError, match="run on CPU and CUDA"):
        kernels.assign(torch.zeros(4, 3, device="meta"), 0.5)
    with pytest.raises(ValueError, match="run on CPU and CUDA"):
        kernels.bernoulli_loglik(torch.zeros(2, 3, 5, device="meta"), torch.zeros(2, 5, device="meta"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64])
def test_device_assign_dtype_checks(dtype):
    with pytest.raises(TypeError, match=str(dtype)):
        kernels._check_scores_tensor(torch.zeros(4, 3, dtype=dtype))


def test_device_assign_shape_checks():
    assert kernels._check_scores_tensor(torch.zeros(4, 3)) == (1, 4, 3, (0, 3, 1))
    t = torch.zeros(5, 4, 6)[:, ::2, 1:4]
    assert kernels._check_scores_tensor(t) == (5, 2, 3, (24, 12, 1))
    assert kernels._check_scores_tensor(torch.zeros(3, 4).t())[3] == (0, 1, 4)  # any strides
    with pytest.raises(ValueError, match="1 dimensions"):
        kernels._check_scores_tensor(torch.zeros(4))
    with pytest.raises(ValueError, match="S = 0"):
        kernels._check_scores_tensor(torch.zeros(4, 0))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int32])
def test_device_loglik_logits_dtype(dtype):
    with pytest.raises(TypeError, match="logits has dtype"):
        kernels.check_loglik_tensors(torch.zeros(2, 3, 5, dtype=dtype), torch.zeros(2, 5))


def test_device_loglik_checks():
    logits, x = torch.zeros(2, 3, 5), torch.zeros(2, 5)
    assert kernels.check_loglik_tensors(logits, x) == (2, 3, 5)
    assert kernels.check_loglik_tensors(logits.bfloat16(), x) == (2, 3, 5)
    assert kernels.check_loglik_tensors(torch.zeros(4, 6, 5)[::2, ::2], x) == (2, 3, 5)  # b, s strides
    assert kernels.check_loglik_tensors(torch.zeros(2, 3, 1)[:, :, :], torch.zeros(2, 4)[:, :1]) == (2, 3, 1)
    with pytest.raises(TypeError, match="x has dtype torch.float64"):
        kernels.check_loglik_tensors(logits, x.double())
    with pytest.raises(ValueError, match=r"x must have shape \(B, P\) = \(2, 5\)"):
        kernels.check_loglik_tensors(logits, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(B, S, P\), got 2 dimensions"):
        kernels.check_loglik_tensors(torch.zeros(2, 3), x)
    with pytest.raises(ValueError, match=r"logits has stride 3 along the pixel axis.*logits.contiguous\(\)"):
        kernels.check_loglik_tensors(torch.zeros(2, 5, 3).transpose(1, 2), x)
    with pytest.raises(ValueError, match=r"x has stride 2 along the pixel axis.*x.contiguous\(\)"):
        kernels.check_loglik_tensors(logits, torch.zeros(2, 10)[:, ::2])


def test_device_lam_must_be_a_host_number():
    with pytest.raises(TypeError, match="pass a Python number"):
        kernels._lam_value(torch.tensor(0.5, device="meta"))
    assert kernels._lam_value(0.5) == 0.5


# ---- builds with and without CUDA --------------------------------------------------------------

def test_build_info_matches_kernels_flag():
    assert kernels.HAVE_CUDA_KERNELS == CUDA_BUILD


@pytest.mark.skipif(CUDA_BUILD, reason="this build has the CUDA kernels")
def test_cpu_only_build_refuses_cuda_calls():
    with pytest.raises(RuntimeError, match=NO_CUDA):
        ce._assign_cuda(0, "float32", 1, 4, 3, 12, 3, 1, 0.5, 0, 0, 0, 0)
    with pytest.raises(RuntimeError, match=NO_CUDA):
        ce._bernoulli_loglik_cuda(0, "float32", 2, 3, 5, 15, 5, 0, 5, 0, "fast", 0, 0)
    with pytest.raises(RuntimeError, match=NO_CUDA):
        ce._cuda_max_shared_bytes(0)
    with pytest.raises(RuntimeError, match=NO_CUDA):
        kernels._require_cuda_kernels()
    assert not kernels.assign_fits_device(64, 3, 0)


@pytest.mark.skipif(not CUDA_BUILD or ce.build_info()["cuda_devices"] > 0,
                    reason="needs a CUDA build on a machine without a usable GPU")
def test_cuda_build_without_gpu_raises_instead_of_crashing():
    with pytest.raises(RuntimeError, match="CUDA error"):
        ce._assign_cuda(0, "float32", 1, 4, 3, 12, 3, 1, 0.5, 0, 0, 0, 0)
    with pytest.raises(RuntimeError, match="CUDA error"):
        ce._bernoulli_loglik_cuda(0, "float32", 2, 3, 5, 15, 5, 0, 5, 0, "fast", 0, 0)
    with pytest.raises(RuntimeError, match="CUDA error"):
        ce._cuda_max_shared_bytes(0)


def test_bad_arguments_of_the_launchers():
    with pytest.raises(TypeError, match="float16"):
        ce._assign_cuda(0, "float16", 1, 4, 3, 12, 3, 1, 0.5, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="lam"):
        ce._assign_cuda(0, "float32", 1, 4, 3, 12, 3, 1, -1.0, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="float64"):
        ce._bernoulli_loglik_cuda(0, "float64", 2, 3, 5, 15, 5, 0, 5, 0, "fast", 0, 0)
    with pytest.raises(ValueError, match="variant"):
        ce._bernoulli_loglik_cuda(0, "float32", 2, 3, 5, 15, 5, 0, 5, 0, "exact", 0, 0)


def test_assign_shared_bytes():
    # 12 S^2 + 12 n bytes and a little per class: (64, 10) -> 2344 bytes
    assert ce._assign_shared_bytes(64, 10) == 8 * (100 + 10 + 11) + 4 * (100 + 2 * 11 + 3 * 10 + 3 * 64)
    assert ce._assign_shared_bytes(65, 10) - ce._assign_shared_bytes(64, 10) == 12
    h100 = 227 * 1024  # opt-in shared memory per block on an H100
    assert ce._assign_shared_bytes(4096, 32) < 64 * 1024
    assert ce._assign_shared_bytes(15000, 64) < h100 < ce._assign_shared_bytes(16000, 64)
    assert ce._assign_shared_bytes(2500, 128) < h100 < ce._assign_shared_bytes(3000, 128)


def test_one_hot_codes_equal_f_one_hot():
    labels = torch.tensor([2, 0, 1, 2, 2])
    assert torch.equal(one_hot_codes(labels, 4, torch.float32), F.one_hot(labels, 4).float())


# ---- the CUDA likelihood accumulators, run on the host -------------------------------------------

def bf16_bits(t):
    return t.bfloat16().view(torch.int16).numpy().view(np.uint16)


# A serial float32 sum of P terms loses up to about P/2 ulps of the magnitude; the GPU sums
# in a tree and loses far less. 1e-5 of the magnitude covers P up to a few thousand.
HOST_RTOL = 1e-5


@pytest.mark.parametrize("variant", ["fast", "precise"])
@pytest.mark.parametrize("shape", [(3, 4, 100), (2, 10, 1024), (2, 3, 4097), (1, 2, 7)])
def test_device_accumulators_match_float64(variant, shape):
    rng = np.random.default_rng(sum(shape))
    logits = (rng.standard_normal(shape) * 4).astype(np.float32)
    logits.reshape(-1)[rng.integers(0, logits.size, 20)] = rng.choice([80.0, -80.0, 1e4, -1e4, 87.5, -100.0], 20)
    x = (rng.random((shape[0], shape[2])) < 0.4).astype(np.float32)
    x[:, ::3] = rng.random(x[:, ::3].shape)  # some fractional targets
    tol = HOST_RTOL * loglik_magnitude64(logits, x) + 1e-30
    out = ce._bernoulli_loglik_device_reference(logits, x, variant)
    assert np.all(np.abs(out - loglik_reference64(logits, x)) <= tol)
    # bfloat16 logits: the same rows on the bfloat16-rounded values
    lt = torch.from_numpy(logits)
    out16 = ce._bernoulli_loglik_device_reference(bf16_bits(lt), x, variant)
    rounded = lt.bfloat16().float().numpy()
    assert np.all(np.abs(out16 - loglik_reference64(rounded, x)) <= HOST_RTOL * loglik_magnitude64(rounded, x) + 1e-30)


def test_device_accumulators_strides_and_nan():
    rng = np.random.default_rng(1)
    big = rng.standard_normal((4, 6, 40)).astype(np.float32)
    x = rng.random((4, 40)).astype(np.float32)
    view = big[:, ::2, :]
    for variant in ("fast", "precise"):
        assert np.array_equal(ce._bernoulli_loglik_device_reference(view, x, variant),
                              ce._bernoulli_loglik_device_reference(np.ascontiguousarray(view), x, variant))
    nan = big.copy()
    nan[1, 2, 5] = np.nan
    out = ce._bernoulli_loglik_device_reference(nan, x, "fast")
    assert np.isnan(out[1, 2]) and np.isfinite(np.delete(out.ravel(), 1 * 6 + 2)).all()


def test_precise_accumulator_terms_are_the_cpu_kernels():
    """With one pixel per row there is no summation: the precise host accumulator gives exactly
    the CPU kernel's float32 term (the CPU kernel rounds a double sum of one float)."""
    rng = np.random.default_rng(2)
    logits = (rng.standard_normal((50, 3, 1)) * 10).astype(np.float32)
    x = rng.random((50, 1)).astype(np.float32)
    cpu = ce._bernoulli_loglik_simd(logits, x, "avx2") if "avx2" in ce._loglik_simd()["available"] else None
    if cpu is None:
        pytest.skip("the device variant matches the CPU's FMA variants (AVX2/AVX-512)")
    assert np.array_equal(ce._bernoulli_loglik_device_reference(logits, x, "precise"), cpu)


def test_device_reference_argument_checks():
    with pytest.raises(TypeError, match="uint16"):
        ce._bernoulli_loglik_device_reference(np.zeros((1, 2, 3)), np.zeros((1, 3), np.float32), "fast")
    with pytest.raises(ValueError, match="variant"):
        ce._bernoulli_loglik_device_reference(np.zeros((1, 2, 3), np.float32), np.zeros((1, 3), np.float32), "x")
