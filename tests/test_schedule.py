"""Beta schedules: the cascade in both variants, the baselines' schedules, resume consistency."""
import json
import pickle

import numpy as np
import pytest

from cascadevae.schedule import (
    AnchorSchedule,
    CascadeSchedule,
    ConstantSchedule,
    schedule_from_dict,
)

R = 20_000


def official6():
    return CascadeSchedule(6, beta_high=10.0, beta_low=0.1, relieve_every=R,
                           discrete_warmup=80_000, variant="official")


def paper6():
    return CascadeSchedule(6, beta_high=10.0, beta_low=1.0, relieve_every=R,
                           discrete_warmup=100_000, variant="paper")


# -- official variant (FACTS.md: the authors' code) ------------------------------------------

@pytest.mark.parametrize("t, relieved, discrete", [
    (0, 1, False),          # first dim relieved at t = 0
    (19_999, 1, False),
    (20_000, 2, False),
    (40_000, 3, False),
    (60_000, 4, False),
    (79_999, 4, False),
    (80_000, 4, True),      # discrete step on at t_d; no new dim in this stage
    (99_999, 4, True),
    (100_000, 5, True),
    (119_999, 5, True),
    (120_000, 6, True),     # all 6 from 120k ...
    (299_999, 6, True),     # ... to the end
])
def test_official_counting(t, relieved, discrete):
    s = official6()
    assert s.relieved(t) == relieved
    assert s.discrete_on(t) is discrete
    assert s.stage(t) == t // R
    b = s.betas(t)
    assert b.dtype == np.float64 and b.shape == (6,)
    np.testing.assert_array_equal(b, [0.1] * relieved + [10.0] * (6 - relieved))


def test_official_cascade_c_all_open_at_180k():
    s = CascadeSchedule(10, 10.0, 0.1, R, None, "official")
    assert [s.relieved(k * R) for k in range(11)] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10]
    assert s.relieved(179_999) == 9 and s.relieved(180_000) == 10
    assert s.fully_relieved_at() == 180_000
    assert not any(s.discrete_on(t) for t in (0, 10**6))


def test_official_relief_iterations_and_optimizer_resets():
    s = official6()
    assert s.relief_iterations() == (0, 20_000, 40_000, 60_000, 100_000, 120_000)
    resets = [t for t in range(0, 300_000, 10_000) if s.optimizer_reset(t)]
    # one Adam per beta vector: no reset at the discrete switch (80k)
    assert resets == [20_000, 40_000, 60_000, 100_000, 120_000]
    bounds = [t for t in range(0, 300_000, 10_000) if s.is_stage_boundary(t)]
    assert bounds == list(range(R, 300_000, R))
    assert s.is_stage_boundary(R) and not s.is_stage_boundary(R - 1)
    assert not s.is_stage_boundary(0)


def test_official_requires_whole_stage_warmup():
    with pytest.raises(ValueError, match="50000"):
        CascadeSchedule(6, 10.0, 0.1, R, 50_000, "official")
    CascadeSchedule(6, 10.0, 0.1, R, 50_000, "paper")  # fine for the paper's counting


def test_official_td_zero_relieves_from_first_stage():
    s = CascadeSchedule(4, 10.0, 1.0, 10, 0, "official")
    assert s.discrete_on(0)
    assert [s.relieved(t) for t in (0, 9, 10, 20, 30, 40)] == [0, 0, 1, 2, 3, 4]


# -- paper variant (Algorithm 1, loop counted from 1; t = paper iteration - 1) --------------

def test_paper_first_relief_at_rth_update():
    s = paper6()
    assert s.relieved(0) == 0
    assert s.relieved(R - 2) == 0          # paper iteration r - 1
    assert s.relieved(R - 1) == 1          # paper iteration r: a multiple of r
    assert s.relieved(2 * R - 2) == 1
    assert s.relieved(2 * R - 1) == 2
    assert s.relief_iterations() == tuple((j + 1) * R - 1 for j in range(6))
    assert s.relieved(10**7) == 6
    assert s.stage(R - 2) == 0 and s.stage(R - 1) == 1
    assert s.is_stage_boundary(R - 1) and not s.is_stage_boundary(R)


def test_paper_discrete_switch_exactly_at_td():
    s = paper6()
    # Algorithm 1 runs the discrete step when its iteration t+1 > t_d, i.e. from our t = t_d.
    assert not s.discrete_on(99_999)
    assert s.discrete_on(100_000)
    # the cascade keeps going independently of the discrete step
    assert s.relieved(99_999) == 5 and s.relieved(119_999) == 6


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_dims_open_in_index_order(variant):
    s = CascadeSchedule(8, 10.0, 0.5, 7, 14 if variant == "official" else 13, variant)
    prev = 0
    for t in range(0, 120):
        k = s.relieved(t)
        assert prev <= k <= 8
        prev = k
        assert s.relieved_dims(t) == tuple(range(k))
        b = s.betas(t)
        assert np.all(b[:k] == 0.5) and np.all(b[k:] == 10.0)
    for j, tj in enumerate(s.relief_iterations()):
        assert j in s.relieved_dims(tj)
        assert tj == 0 or j not in s.relieved_dims(tj - 1)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_discrete_never_without_warmup(variant):
    s = CascadeSchedule(3, 10.0, 1.0, 5, None, variant)
    assert not any(s.discrete_on(t) for t in range(100))


# -- resume consistency ----------------------------------------------------------------------

@pytest.mark.parametrize("sched", [
    official6(), paper6(),
    CascadeSchedule(10, 10.0, 1.0, R, None, "paper"),
    ConstantSchedule(4, beta=1.0, discrete_warmup=100_000),
    AnchorSchedule(20, anchor_dims=(4, 0, 1, 2, 3), beta_high=10.0, beta_low=7.0),
])
def test_rebuilt_from_dict_gives_same_answers(sched):
    d = json.loads(json.dumps(sched.to_dict()))
    again = schedule_from_dict(d)
    assert again == sched and type(again) is type(sched)
    assert pickle.loads(pickle.dumps(sched)) == sched
    assert type(sched).from_dict(d) == sched
    for t in list(range(0, 300_001, 2_500)) + [R - 1, R, 79_999, 80_000, 99_999, 100_000]:
        np.testing.assert_array_equal(again.betas(t), sched.betas(t))
        assert again.relieved(t) == sched.relieved(t)
        assert again.discrete_on(t) == sched.discrete_on(t)
        assert again.stage(t) == sched.stage(t)
        assert again.optimizer_reset(t) == sched.optimizer_reset(t)
    assert again.relief_iterations() == sched.relief_iterations()


def test_schedule_is_immutable_and_betas_are_copies():
    s = official6()
    with pytest.raises(Exception):
        s.beta_low = 1.0
    b = s.betas(0)
    b[:] = -1
    assert s.betas(0)[0] == 0.1


# -- baselines -------------------------------------------------------------------------------

def test_constant_schedule():
    s = ConstantSchedule(10, beta=4.0)
    for t in (0, 1, 20_000, 10**6):
        np.testing.assert_array_equal(s.betas(t), np.full(10, 4.0))
        assert s.relieved(t) == 0 and s.relieved_dims(t) == ()
        assert s.stage(t) == 0 and not s.is_stage_boundary(t) and not s.optimizer_reset(t)
        assert not s.discrete_on(t)
    assert s.relief_iterations() == (None,) * 10
    d = ConstantSchedule(4, beta=1.0, discrete_warmup=100_000)
    assert not d.discrete_on(99_999) and d.discrete_on(100_000)


def test_anchor_schedule():
    s = AnchorSchedule(6, anchor_dims=[3, 1], beta_high=10.0, beta_low=7.0)
    assert s.anchor_dims == (1, 3)
    for t in (0, 50_000):
        np.testing.assert_array_equal(s.betas(t), [10, 7, 10, 7, 10, 10])
        assert s.relieved(t) == 2 and s.relieved_dims(t) == (1, 3)
        assert not s.optimizer_reset(t)
    assert s.relief_iterations() == (None, 0, None, 0, None, None)


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, needle", [
    (dict(latent_dim=0), "latent_dim"),
    (dict(latent_dim=2.5), "latent_dim"),
    (dict(relieve_every=-5), "-5"),
    (dict(relieve_every=0), "relieve_every"),
    (dict(beta_low=20.0), "beta_l"),
    (dict(beta_high=-1.0), "beta_high"),
    (dict(beta_low=float("nan")), "beta_low"),
    (dict(discrete_warmup=-1), "discrete_warmup"),
    (dict(variant="Paper"), "Paper"),
])
def test_cascade_rejects_bad_arguments(kwargs, needle):
    base = dict(latent_dim=6, beta_high=10.0, beta_low=1.0, relieve_every=R,
                discrete_warmup=None, variant="paper")
    base.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        CascadeSchedule(**base)


def test_equal_betas_allowed():
    s = CascadeSchedule(3, 2.0, 2.0, 10)
    np.testing.assert_array_equal(s.betas(100), [2.0, 2.0, 2.0])


@pytest.mark.parametrize("t", [-1, 1.5, True, "3"])
def test_bad_iteration(t):
    with pytest.raises(ValueError, match="iteration"):
        official6().betas(t)


def test_numpy_integer_iteration_accepted():
    assert official6().relieved(np.int64(20_000)) == 2


@pytest.mark.parametrize("kwargs, needle", [
    (dict(anchor_dims=()), "empty"),
    (dict(anchor_dims=(0, 6)), "out of range"),
    (dict(anchor_dims=(1, 1)), "duplicates"),
    (dict(beta_low=11.0), "beta_l"),
])
def test_anchor_rejects_bad_arguments(kwargs, needle):
    base = dict(latent_dim=6, anchor_dims=(0,), beta_high=10.0, beta_low=1.0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        AnchorSchedule(**base)


def test_from_dict_errors():
    with pytest.raises(ValueError, match="kind"):
        schedule_from_dict({"latent_dim": 3})
    with pytest.raises(ValueError, match="unknown schedule kind"):
        schedule_from_dict({"kind": "cosine"})
    d = official6().to_dict()
    d["bogus"] = 1
    with pytest.raises(ValueError, match="bogus"):
        schedule_from_dict(d)
    with pytest.raises(ValueError, match="ConstantSchedule"):
        ConstantSchedule.from_dict(official6().to_dict())
