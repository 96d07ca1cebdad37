"""cascadevae.device_step on the CPU: the update it queues equals Trainer.step's, bit for bit
(same batches, same z, same codes, same Adam), through the discrete switch and fresh-optimizer
resets; its device-side bookkeeping (stats, class counts, the first non-finite t) reads back
like Trainer.step's record. Graph capture and the absence of host syncs need a GPU
(tests/test_gpu.py)."""
import numpy as np
import pytest
import torch

from conftest import random_binary_images
from cascadevae.device_step import DeviceStep
from cascadevae.presets import get_preset
from cascadevae.training import Trainer


def make_trainer(preset, size, iters=8, **over):
    cfg = get_preset(preset).replace(batch_size=6, **over).scaled(iters)
    return Trainer(cfg, random_binary_images(64, size), size, torch.device("cpu"))


def run_pair(preset, size, iters=8, **over):
    torch.set_num_threads(1)
    ref = make_trainer(preset, size, iters, **over)
    dut = make_trainer(preset, size, iters, **over)
    step = DeviceStep.from_trainer(dut, use_graphs=False)
    recs = []
    for t in range(iters):
        want = ref.step()
        images, _ = dut.dataset.sample_batch(dut.cfg.batch_size, dut.data_rng)
        step.step(t, images)
        recs.append((want, step.record(t)))
    return ref, dut, step, recs


@pytest.mark.parametrize("preset,size", [("dsprites-official", 64), ("mnist", 32)])
def test_update_equals_trainer_step(preset, size):
    ref, dut, step, recs = run_pair(preset, size)
    for a, b in zip(ref.model.state_dict().values(), dut.model.state_dict().values()):
        assert torch.equal(a, b)
    for want, got in recs:
        assert got["t"] == want["t"] and got["discrete_on"] == want["discrete_on"]
        for key in ("loss", "recon", "kl"):
            assert got[key] == pytest.approx(want[key], rel=1e-6), key
        np.testing.assert_allclose(got["kl_per_dim"], want["kl_per_dim"], rtol=1e-6)
        assert got["betas"] == want["betas"] and got["relieved"] == want["relieved"]
        assert got["class_counts"] == want["class_counts"]
    assert step.first_nonfinite() is None
    # the schedule of this preset switches the discrete step on and resets Adam in the run
    if preset == "dsprites-official":
        assert not recs[0][0]["discrete_on"] and recs[-1][0]["discrete_on"]
        assert ref.cfg.fresh_optimizer_per_stage


def test_first_nonfinite_is_recorded_on_device():
    # (a model without the discrete step: the CPU assign itself refuses NaN scores)
    tr = make_trainer("beta-vae", 32, 6, dataset="mnist")
    step = DeviceStep.from_trainer(tr, use_graphs=False)
    for t in range(2):
        step.step(t, tr.dataset.sample_batch(6, tr.data_rng)[0])
    assert step.first_nonfinite() is None
    images = tr.dataset.sample_batch(6, tr.data_rng)[0].copy()
    images[0, 0, 0, 0] = np.nan
    step.step(2, images)
    step.step(3, tr.dataset.sample_batch(6, tr.data_rng)[0])
    assert step.first_nonfinite() == 2
    # a restarted counter follows the t the caller passes
    step.step(10, tr.dataset.sample_batch(6, tr.data_rng)[0])
    assert int(step.t_device) == 11


def test_reset_optimizer_zeroes_state_in_place():
    tr = make_trainer("mnist", 32, 4)
    step = DeviceStep.from_trainer(tr, use_graphs=False)
    step.step(0, tr.dataset.sample_batch(6, tr.data_rng)[0])
    before = {id(v) for s in step.optimizer.state.values() for v in s.values() if torch.is_tensor(v)}
    step.reset_optimizer()
    after = [v for s in step.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    assert {id(v) for v in after} == before
    assert all(torch.count_nonzero(v) == 0 for v in after)


def test_from_trainer_carries_optimizer_state():
    tr = make_trainer("mnist", 32, 4)
    tr.step()
    step = DeviceStep.from_trainer(tr, use_graphs=False)
    want = tr.optimizer.state_dict()["state"]
    got = step.optimizer.state_dict()["state"]
    assert want.keys() == got.keys()
    for k in want:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(want[k][name]), torch.as_tensor(got[k][name]))


def test_cpu_model_refuses_graphs_and_bad_options():
    tr = make_trainer("mnist", 32, 4)
    with pytest.raises(ValueError, match="CUDA graphs need a model on a CUDA device"):
        DeviceStep.from_trainer(tr)
    with pytest.raises(ValueError, match="loglik_variant"):
        DeviceStep.from_trainer(tr, use_graphs=False, loglik_variant="exact")
    with pytest.raises(ValueError, match="warmup_steps"):
        DeviceStep.from_trainer(tr, use_graphs=False, warmup_steps=0)


def test_models_without_discrete_code():
    ref = make_trainer("beta-vae", 64, 3, dataset="dsprites")
    dut = make_trainer("beta-vae", 64, 3, dataset="dsprites")
    step = DeviceStep.from_trainer(dut, use_graphs=False)
    for t in range(3):
        want = ref.step()
        step.step(t, dut.dataset.sample_batch(6, dut.data_rng)[0])
        got = step.record(t)
        assert got["class_counts"] is None and got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    for a, b in zip(ref.model.state_dict().values(), dut.model.state_dict().values()):
        assert torch.equal(a, b)
