"""Datasets of the paper (dSprites, MNIST, FashionMNIST, Chairs) behind two small interfaces:
:class:`ImageDataset` (float32 ``(n, 1, H, W)`` batches in [0, 1], labels where they exist)
and :class:`GroundTruthData` (factors, sampling, images from factors) for the metrics.

    from cascadevae import data
    ds = data.load("dsprites")            # real file if found, else the procedural twin
    x, idx = ds.sample_batch(64, np.random.default_rng(0))
"""
from .cache import AtomicArrayWriter, cache_file, read_array, write_array
from .chairs import load_chairs, load_image_folder
from .dsprites import (DSPRITES_FILENAME, FACTOR_NAMES, FACTOR_SIZES, SHAPE_NAMES, DSprites,
                       DSpritesBase, DSpritesGrid, find_dsprites_file, geometry_summary,
                       load_dsprites_npz)
from .dsprites_render import (ProceduralDSprites, load_procedural_dsprites, render_factors,
                              render_grid, render_sprites)
from .errors import CacheInvalid, DatasetError, MissingDependencyError
from .ground_truth import GroundTruthData, factors_from_index, index_from_factors
from .idx import read_idx
from .image_dataset import ArrayImageDataset, ImageDataset
from .mnist import load_fashion_mnist, load_idx_directory, load_mnist, load_mnist5k
from .paths import (CACHE_DIR_ENV, DATA_DIR_ENV, add_data_dir_argument, cache_dir,
                    resolve_data_dir)
from .registry import FAMILIES, available, family, image_size, load

__all__ = [
    "load", "available", "family", "image_size", "FAMILIES",
    "ImageDataset", "ArrayImageDataset", "GroundTruthData",
    "index_from_factors", "factors_from_index",
    "DSprites", "DSpritesBase", "DSpritesGrid", "ProceduralDSprites",
    "DSPRITES_FILENAME", "FACTOR_NAMES", "FACTOR_SIZES", "SHAPE_NAMES",
    "load_dsprites_npz", "find_dsprites_file", "load_procedural_dsprites", "render_sprites",
    "render_factors", "render_grid", "geometry_summary",
    "load_mnist", "load_fashion_mnist", "load_mnist5k", "load_idx_directory", "read_idx",
    "load_chairs", "load_image_folder",
    "DatasetError", "CacheInvalid", "MissingDependencyError",
    "resolve_data_dir", "add_data_dir_argument", "cache_dir", "DATA_DIR_ENV", "CACHE_DIR_ENV",
    "AtomicArrayWriter", "cache_file", "read_array", "write_array",
]
