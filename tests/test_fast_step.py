"""The fast CPU step: layout-aware convolutions equal torch's, the native one-channel transposed
convolution and the bfloat16 likelihood input are exact, the scoring pass equals the plain B*S
pass, precision and compile are resolved, recorded and kept on resume, bf16 and compiled runs
train (and resume bitwise), and compilation falls back cleanly."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cascadevae_ext
from cascadevae import acceleration, train
from cascadevae.models import all_code_inputs, conv_layout
from cascadevae.models.networks import Decoder, Encoder
from cascadevae.presets import TrainConfig, get_preset
from cascadevae.run_dir import RunDir

BASE = ["--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress", "--device", "cpu",
        "--mi-every", "0", "--no-eval", "--no-figures"]
# a float32 CPU can run bfloat16 through autocast even without native bfloat16 units
HAVE_BF16 = hasattr(torch, "bfloat16")


def _run(out, *extra):
    return train.main(BASE + ["--out", str(out), *extra])


# ---- layers --------------------------------------------------------------------------------

@pytest.mark.parametrize("cin,cout,h", [(64, 64, 4), (64, 32, 8), (32, 32, 16), (32, 1, 32),
                                        (32, 1, 16), (5, 1, 3)])
def test_conv_transpose_forward_and_gradients_equal_torch(cin, cout, h):
    g = torch.Generator().manual_seed(cin + cout + h)
    x = torch.randn(6, cin, h, h, generator=g).relu().requires_grad_()
    w = (0.1 * torch.randn(cin, cout, 4, 4, generator=g)).requires_grad_()
    b = torch.randn(cout, generator=g).requires_grad_()
    up = torch.randn(6, cout, 2 * h, 2 * h, generator=g)
    ref = F.conv_transpose2d(x, w, b, stride=2, padding=1)
    ref_grads = torch.autograd.grad((ref * up).sum(), (x, w, b))
    out = conv_layout.conv_transpose(x, w, b)
    grads = torch.autograd.grad((out * up).sum(), (x, w, b))
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4 * float(r.abs().max()))
    with torch.no_grad():
        torch.testing.assert_close(conv_layout.conv_transpose(x, w, b), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cin,cout,h", [(1, 32, 64), (32, 32, 32), (64, 64, 8)])
def test_conv_forward_and_gradients_equal_torch(cin, cout, h):
    g = torch.Generator().manual_seed(cin + h)
    x = torch.rand(4, cin, h, h, generator=g).requires_grad_()
    w = (0.1 * torch.randn(cout, cin, 4, 4, generator=g)).requires_grad_()
    b = torch.randn(cout, generator=g).requires_grad_()
    ref = F.conv2d(x, w, b, stride=2, padding=1)
    out = conv_layout.conv(x, w, b)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for a, r in zip(torch.autograd.grad(out.square().sum(), (x, w, b)),
                    torch.autograd.grad(ref.square().sum(), (x, w, b))):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4 * float(r.abs().max()))


def test_native_transposed_conv_1ch_exact_properties():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 32, 16, 16, generator=g).relu()
    w = 0.1 * torch.randn(32, 16, generator=g)
    rows = x.permute(0, 2, 3, 1).contiguous()
    out = cascadevae_ext.transposed_conv_1ch(rows, w, 0.25, num_threads=1)
    ref = F.conv_transpose2d(x.double(), w.double().view(32, 1, 4, 4),
                             torch.tensor([0.25], dtype=torch.float64), stride=2, padding=1)
    assert out.shape == (40, 32, 32) and out.dtype == np.float32
    # float32 sums of 64 products: within a few ulp of the float64 result
    assert np.max(np.abs(out - ref[:, 0].numpy())) < 1e-5 * (1 + float(ref.abs().max()))
    # independent of the thread count, and bfloat16 input = its exact float32 widening
    assert np.array_equal(out, cascadevae_ext.transposed_conv_1ch(rows, w, 0.25, num_threads=2))
    rb = rows.bfloat16()
    assert np.array_equal(cascadevae_ext.transposed_conv_1ch(rb, w, 0.25),
                          cascadevae_ext.transposed_conv_1ch(rb.float(), w, 0.25))
    with pytest.raises(ValueError, match="C-contiguous"):
        cascadevae_ext.transposed_conv_1ch(x.permute(0, 2, 3, 1), w, 0.0)
    with pytest.raises(ValueError, match="weight has 16 rows"):
        cascadevae_ext.transposed_conv_1ch(rows, torch.zeros(16, 16), 0.0)
    with pytest.raises(TypeError, match="float32"):
        cascadevae_ext.transposed_conv_1ch(rows.double(), w, 0.0)


@pytest.mark.parametrize("size,m,S", [(64, 6, 3), (32, 10, 10)])
def test_networks_equal_plain_modules_and_scoring_pass(size, m, S):
    torch.manual_seed(size)
    enc, dec = Encoder(size, m), Decoder(size, m, S)
    x = (torch.rand(5, 1, size, size) < 0.3).float()
    torch.testing.assert_close(enc(x), enc.fc(enc.convs(x)), rtol=1e-5, atol=1e-5)
    z = torch.randn(5, m)
    z_rep, codes = all_code_inputs(z, S)
    with torch.no_grad():
        plain = dec.deconvs(dec.fc(torch.cat([z_rep, codes], 1))).reshape(5, S, -1)
    scored = dec.score_all_codes(z)
    assert scored.shape == (5, S, size * size) and scored.is_contiguous()
    torch.testing.assert_close(scored, plain, rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = dec.score_all_codes(z)
    # bfloat16 has 8 mantissa bits: logits within about 1 % of their scale
    assert float((low.float() - plain).abs().max()) < 0.02 * (1 + float(plain.abs().max()))


def test_bf16_logits_in_cpu_likelihood_kernel():
    g = torch.Generator().manual_seed(0)
    logits = (6 * torch.randn(7, 3, 999, generator=g)).bfloat16()
    x = (torch.rand(7, 999, generator=g) < 0.4).float()
    out = cascadevae_ext.bernoulli_loglik(logits, x)
    # exactly the float32 kernel on the widened logits ...
    assert np.array_equal(out, cascadevae_ext.bernoulli_loglik(logits.float(), x))
    # ... which agrees with float64 to float32 accuracy (the documented ~3 ulp per term)
    l64 = logits.double()
    ref = (x.double().unsqueeze(1) * l64 - F.softplus(l64)).sum(-1).numpy()
    assert np.max(np.abs(out - ref) / (1 + np.abs(ref))) < 2e-6
    # strided bfloat16 views are read in place
    assert np.array_equal(cascadevae_ext.bernoulli_loglik(logits[:, ::2], x),
                          cascadevae_ext.bernoulli_loglik(logits[:, ::2].float(), x))


# ---- settings ------------------------------------------------------------------------------

def test_auto_rules(monkeypatch):
    monkeypatch.setattr(acceleration, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert acceleration.resolve_precision("auto", "cpu") == "fp32"   # AVX512-BF16 alone: no
    monkeypatch.setattr(acceleration, "cpu_flags", lambda: frozenset({"amx_bf16", "avx512_bf16"}))
    assert acceleration.resolve_precision("auto", "cpu") == "bf16"
    assert acceleration.resolve_precision("fp32", "cpu") == "fp32"
    assert acceleration.resolve_compile("auto", "cpu", "bf16") is False
    assert acceleration.resolve_compile(True, "cpu", "fp32") is True
    cfg = get_preset("mnist").resolved("cpu")
    assert cfg.precision == "bf16" and cfg.compile is False
    with pytest.raises(ValueError, match="precision = 'fp16'"):
        get_preset("mnist", precision="fp16")
    with pytest.raises(ValueError, match="compile = 'yes'"):
        get_preset("mnist", compile="yes")


def test_default_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert acceleration.default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(acceleration.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(acceleration.os, "getloadavg", lambda: (2.7, 0.0, 0.0))
    assert acceleration.default_threads() == 1     # 4 cores, 3 busy
    monkeypatch.setattr(acceleration.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert acceleration.default_threads() == 1     # never 0
    monkeypatch.setattr(acceleration.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert acceleration.default_threads() == 4


def test_old_config_loads_as_fp32_uncompiled():
    import pathlib
    flat = json.loads((pathlib.Path(__file__).parent / "data" / "flat_presets.json").read_text())
    d = dict(flat["mnist"])
    d.pop("precision", None), d.pop("compile", None)   # a config.json from before them
    cfg = TrainConfig.from_dict(d)
    assert cfg.precision == "fp32" and cfg.compile is False


# ---- runs ----------------------------------------------------------------------------------

def test_precision_recorded_and_kept_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--preset", "mnist", "--iters", "6", "--precision", "fp32",
                "--threads", "1", "--stop-at", "3") == 0
    cfg, info = TrainConfig.load(out), json.loads((out / "run.json").read_text())
    assert cfg.precision == info["precision"] == "fp32"
    assert cfg.compile is False and info["compile"] is False and info["threads"] == 1
    for bad in (["--precision", "bf16"], ["--compile"]):
        with pytest.raises(SystemExit):
            train.main(["--resume", str(out), "--no-progress", "--no-eval", *bad])
        assert "a resumed run keeps" in capsys.readouterr().err
    # the same values (or none) are accepted
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval", "--precision",
                       "fp32", "--no-compile"]) == 0


@pytest.mark.skipif(not HAVE_BF16, reason="this torch has no bfloat16")
def test_bf16_trains_and_resumes_bitwise(tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["--preset", "mnist", "--iters", "8", "--log-every", "1", "--checkpoint-every",
            "100", "--precision", "bf16"]
    assert _run(full, *args) == 0
    assert "precision bf16" in capsys.readouterr().out
    assert _run(part, *args, "--stop-at", "5") == 0
    assert train.main(["--resume", str(part), "--no-progress", "--no-eval"]) == 0
    a, b = RunDir(full).load_checkpoint()["model"], RunDir(part).load_checkpoint()["model"]
    assert all(a[k].dtype == torch.float32 for k in a)      # float32 master weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = RunDir(full).read_metrics(), RunDir(part).read_metrics()
    assert [r["loss"] for r in ma] == [r["loss"] for r in mb]
    assert all(np.isfinite(r["loss"]) for r in ma)


def test_compile_failure_falls_back_to_eager(tmp_path, monkeypatch, capsys):
    """Where compilation fails at the first update (no compiler, unsupported op), the run
    warns once, rolls the update back, trains eagerly and records compile=False."""
    class FakeDynamoError(RuntimeError):
        pass
    FakeDynamoError.__module__ = "torch._dynamo.exc"

    class Broken(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *a, **k):
            raise FakeDynamoError("no working C++ compiler")

    from cascadevae.training import step as step_mod
    monkeypatch.setattr(step_mod.torch, "compile", lambda module, **kw: Broken(module))
    monkeypatch.setattr(acceleration, "compiler_available", lambda: "")
    eager, out = tmp_path / "eager", tmp_path / "run"
    assert _run(eager, "--preset", "mnist", "--iters", "4", "--no-compile") == 0
    assert _run(out, "--preset", "mnist", "--iters", "4", "--compile") == 0
    text = capsys.readouterr().out
    assert text.count("torch.compile failed") == 1 and "no working C++ compiler" in text
    assert TrainConfig.load(out).compile is False
    a, b = RunDir(eager).load_checkpoint()["model"], RunDir(out).load_checkpoint()["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)   # the rolled-back update was redone exactly


def test_compile_unavailable_is_said_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(acceleration, "compiler_available", lambda: "InvalidCxxCompiler: none")
    assert _run(tmp_path / "run", "--preset", "mnist", "--iters", "2", "--compile") == 0
    assert "torch.compile is unavailable here (InvalidCxxCompiler: none)" in capsys.readouterr().out
    assert TrainConfig.load(tmp_path / "run").compile is False


@pytest.mark.skipif(acceleration.compiler_available() != "", reason="torch.compile cannot run here")
def test_compiled_run_trains_and_resumes_bitwise(tmp_path, capsys):
    """The one test that really compiles (tiny networks; torch caches the compiled code, so
    the resumed half reuses it)."""
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["--preset", "mnist", "--iters", "6", "--log-every", "1", "--checkpoint-every",
            "100", "--compile", "--precision", "fp32"]
    assert _run(full, *args) == 0
    assert "compiled the networks in" in capsys.readouterr().out
    assert _run(part, *args, "--stop-at", "3") == 0
    assert train.main(["--resume", str(part), "--no-progress", "--no-eval"]) == 0
    assert TrainConfig.load(part).compile is True
    a, b = RunDir(full).load_checkpoint()["model"], RunDir(part).load_checkpoint()["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
