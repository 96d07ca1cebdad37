"""Command line of the data layer: ``python -m cascadevae.data COMMAND``.

  geometry [--data-dir DIR]   measured dSprites geometry: the procedural twin beside the real
                              file when the data directory holds it (JSON)
  figure PNG                  write the procedural twin's sample grid
  render [--workers N]        render and cache the full procedural grid, timing it
  list                        the dataset names load() accepts
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from .dsprites import (find_dsprites_file, geometry_summary, load_dsprites_npz,
                       missing_dsprites_error)
from .dsprites_render import ProceduralDSprites, load_procedural_dsprites, save_sample_figure
from .paths import add_data_dir_argument
from .registry import available


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cascadevae.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_dir_argument(sub.add_parser("geometry", help="measured dSprites geometry"))
    figure = sub.add_parser("figure", help="write the twin's sample grid PNG")
    figure.add_argument("path")
    render = sub.add_parser("render", help="render and cache the full procedural grid")
    render.add_argument("--workers", type=int, default=None)
    sub.add_parser("list", help="dataset names")
    args = parser.parse_args(argv)

    if args.command == "geometry":
        report = {"procedural": geometry_summary(ProceduralDSprites())}
        path = find_dsprites_file(args.data_dir)
        report["real"] = (geometry_summary(load_dsprites_npz(path)) if path is not None
                          else str(missing_dsprites_error(args.data_dir)))
        print(json.dumps(report, indent=2))
    elif args.command == "figure":
        print(save_sample_figure(args.path))
    elif args.command == "render":
        t0 = time.perf_counter()
        ds = load_procedural_dsprites(num_workers=args.workers)
        print(f"{len(ds)} images in {time.perf_counter() - t0:.1f} s: {ds.source}")
    else:
        for name, description in available().items():
            print(f"{name:22s} {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
