"""The ground-truth interface and the image-dataset notion: mixed-radix index <-> factors over
the whole dSprites grid, factor sampling, batch access and the random batch samplers."""
import numpy as np
import pytest

from cascadevae.data import (ArrayImageDataset, DatasetError, DSpritesGrid, GroundTruthData,
                             ProceduralDSprites, factors_from_index, index_from_factors)
from cascadevae.data.dsprites import FACTOR_SIZES, NUM_IMAGES
from cascadevae.data.ground_truth import factor_strides


def test_round_trip_over_whole_dsprites_grid():
    index = np.arange(NUM_IMAGES)
    factors = factors_from_index(index, FACTOR_SIZES)
    assert factors.shape == (NUM_IMAGES, 5) and factors.dtype == np.int64
    # C order: posY fastest, as the dSprites file stores its images
    assert factors[:3].tolist() == [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 2]]
    assert factors[32].tolist() == [0, 0, 0, 1, 0]
    assert factors[-1].tolist() == [2, 5, 39, 31, 31]
    np.testing.assert_array_equal(index_from_factors(factors, FACTOR_SIZES), index)
    # and it agrees with numpy's own C-order raveling
    np.testing.assert_array_equal(np.stack(np.unravel_index(index, FACTOR_SIZES), 1), factors)
    assert factor_strides(FACTOR_SIZES).tolist() == [245760, 40960, 1024, 32, 1]


def test_mixed_radix_errors_and_single_rows():
    assert index_from_factors([2, 5, 39, 31, 31], FACTOR_SIZES).tolist() == [NUM_IMAGES - 1]
    assert factors_from_index(5, FACTOR_SIZES).shape == (1, 5)
    with pytest.raises(DatasetError, match="factor 2 of row 0 is 40"):
        index_from_factors([[0, 0, 40, 0, 0]], FACTOR_SIZES)
    with pytest.raises(DatasetError, match="-1"):
        index_from_factors([[0, -1, 0, 0, 0]], FACTOR_SIZES)
    with pytest.raises(DatasetError, match=r"shape \(n, 5\)"):
        index_from_factors([[0, 0, 0]], FACTOR_SIZES)
    with pytest.raises(DatasetError, match="integer"):
        index_from_factors([[0.5, 0, 0, 0, 0]], FACTOR_SIZES)
    with pytest.raises(DatasetError, match=str(NUM_IMAGES)):
        factors_from_index([NUM_IMAGES], FACTOR_SIZES)
    with pytest.raises(DatasetError, match="positive"):
        factors_from_index([0], [3, 0])


def test_ground_truth_interface_on_procedural_dsprites():
    ds = ProceduralDSprites()
    assert isinstance(ds, GroundTruthData)
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (3, 6, 40, 32, 32) and ds.num_factors == 5
    assert len(ds) == ds.num_combinations == NUM_IMAGES
    rng = np.random.default_rng(0)
    f = ds.sample_factors(1000, rng)
    assert f.shape == (1000, 5) and f.dtype == np.int64
    assert (f >= 0).all() and (f < np.array(ds.factor_sizes)).all()
    assert len(np.unique(f[:, 2])) > 30  # all factors vary
    np.testing.assert_array_equal(f, ds.sample_factors(1000, np.random.default_rng(0)))
    factors, images = ds.sample(8, rng)
    assert images.shape == (8, 1, 64, 64) and images.dtype == np.float32
    np.testing.assert_array_equal(images, ds.images(ds.index_from_factors(factors)))
    values = ds.values_from_factors(np.array([[2, 5, 39, 31, 0]]))
    np.testing.assert_allclose(values, [[3.0, 1.0, 2 * np.pi, 1.0, 0.0]])
    assert ds.labels.shape == (NUM_IMAGES,) and ds.num_classes == 3
    np.testing.assert_array_equal(ds.labels[ds.index_from_factors(f)], f[:, 0])


def _array_dataset(n=10):
    imgs = (np.arange(n * 4 * 4) % 256).astype(np.uint8).reshape(n, 4, 4)
    return ArrayImageDataset(imgs, np.arange(n) % 3, name="toy", source="test")


def test_array_dataset_batches_and_values():
    ds = _array_dataset()
    assert len(ds) == 10 and ds.image_shape == (1, 4, 4) and ds.num_classes == 3
    x = ds.images(np.array([0, 9]))
    assert x.shape == (2, 1, 4, 4) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x[1, 0], ds.raw[9] / 255.0, rtol=1e-6)
    with pytest.raises(DatasetError, match="index 10 is out of range"):
        ds.images([10])
    with pytest.raises(DatasetError, match="index -1"):
        ds.images([-1])
    with pytest.raises(DatasetError, match="integers"):
        ds.images(np.array([0.0]))


def test_epoch_batches_cover_every_image_once():
    ds = _array_dataset(10)
    rng = np.random.default_rng(1)
    seen = [idx for _, idx in ds.batches(3, rng, epochs=1)]
    assert [len(s) for s in seen] == [3, 3, 3]  # drop_last
    assert len(np.unique(np.concatenate(seen))) == 9
    seen = [idx for _, idx in ds.batches(3, rng, epochs=2, drop_last=False)]
    assert sorted(np.concatenate(seen[:4]).tolist()) == list(range(10))
    x, idx = ds.sample_batch(64, rng)
    assert x.shape == (64, 1, 4, 4) and idx.max() < 10
    with pytest.raises(DatasetError, match="exceeds"):
        next(ds.batches(11, rng))


def test_subgrid_sizes():
    grid = DSpritesGrid.standard(num_scales=2, num_orientations=3, num_positions=4)
    assert grid.factor_sizes == (3, 2, 3, 4, 4)
    assert grid.orientations[-1] == pytest.approx(2 * np.pi)
    assert not grid.is_standard and DSpritesGrid.standard().is_standard
