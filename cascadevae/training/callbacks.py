"""The loop's callbacks: each one job, and together the run directory's only writers during
training (metrics.jsonl, checkpoints, figures, a tracker).

Order matters and is the order they are given to the loop: the progress bar, the information
monitor (adds I(x; z_j) to a record before it is logged), the metrics log, optional trackers
(TensorBoard), then at checkpoints the checkpoint writer and the figures.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .loop import Callback, Due


def say(msg: str) -> None:
    print(msg, flush=True)


def postfix(rec: Dict[str, Any]) -> Dict[str, Any]:
    post = {"loss": f"{rec['loss']:.1f}", "recon": f"{rec['recon']:.1f}",
            "kl": f"{rec['kl']:.2f}", "relieved": rec["relieved"]}
    if rec["class_counts"] is not None:
        post["classes"] = "/".join(map(str, rec["class_counts"]))
    return post


class ProgressBar(Callback):
    """A tqdm bar over the run's updates, with the last record's losses."""

    def __init__(self, total: int):
        self.total, self.bar = total, None

    def on_start(self, loop):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=self.total, initial=loop.trainer.t, dynamic_ncols=True, unit="it")

    def on_update(self, loop, rec):
        self.bar.update(1)
        if rec is not None:
            self.bar.set_postfix(postfix(rec), refresh=False)

    def write(self, msg: str) -> None:
        (self.bar.write if self.bar is not None else say)(msg)

    def on_end(self, loop, status):
        if self.bar is not None:
            self.bar.close()


class CompileNote(Callback):
    """After the first compiled update: say once what compiling cost, or that it failed and
    the run continues eagerly (config.json then records compile: false)."""

    def __init__(self, run, bar: Optional[ProgressBar] = None):
        self.run, self.bar, self.done = run, bar, False

    def on_update(self, loop, rec):
        step = loop.step
        if self.done or (getattr(step, "compile_seconds", None) is None
                         and getattr(step, "compile_failed", None) is None):
            return
        self.done = True
        if step.compile_failed:
            msg = (f"warning: torch.compile failed ({step.compile_failed}); training without "
                   "compilation (--no-compile silences this)")
            loop.trainer.cfg.save(self.run.path)
        else:
            msg = (f"compiled the networks in {step.compile_seconds:.1f} s (first update only; "
                   "--no-compile skips it)")
        (self.bar.write if self.bar is not None else say)(msg)


class InformationMonitor(Callback):
    """I(x; z_j) and I(x; d) on a fixed image set, added to the records it is due for."""

    def __init__(self, monitor):
        self.monitor = monitor

    def on_record(self, loop, rec, due: Due):
        if due.measure:
            rec.update(self.monitor.measure(loop.trainer.model, rec["t"]))


class MetricsLog(Callback):
    """One JSON line per logged record in metrics.jsonl, with the run's wall seconds."""

    def __init__(self, run):
        self.run = run

    def on_record(self, loop, rec, due: Due):
        if due.log:
            self.run.append_metrics(dict(rec, seconds=round(loop.wall(), 3)))


class Checkpoints(Callback):
    """checkpoint.pt (atomic) at every checkpoint, and with ``keep`` every checkpoint's
    weights in checkpoints/ for ``evaluate --all-checkpoints``."""

    def __init__(self, run, keep: bool = False):
        self.run, self.keep = run, keep

    def on_checkpoint(self, loop):
        state = loop.trainer.state(loop.wall())
        self.run.save_checkpoint(state)
        if self.keep:
            self.run.save_weights(state)


class Figures(Callback):
    """Reconstructions and traversals at every checkpoint (and the information curves when the
    monitor runs); a figure never stops a run."""

    def __init__(self, run, dataset, *, title: str, information: bool):
        self.run, self.dataset, self.title, self.information = run, dataset, title, information

    def on_checkpoint(self, loop):
        trainer = loop.trainer
        try:
            from ..figures import information_curves, write_figures
            write_figures(trainer.model, self.dataset, self.run.path / "figures", trainer.t,
                          image_size=trainer.image_size, device=trainer.device,
                          model_name=trainer.cfg.model_name)
            if self.information:
                information_curves(self.run.read_metrics(), trainer.schedule,
                                   self.run.path / "figures" / "information.png",
                                   title=self.title)
        except Exception as exc:  # noqa: BLE001
            say(f"warning: figures at t={trainer.t} failed: {type(exc).__name__}: {exc}")


class TensorBoard(Callback):
    """The same scalars as metrics.jsonl, and the figures at each checkpoint, in a TensorBoard
    event file under RUN_DIR/tensorboard (``pip install "cascadevae[tensorboard]"``)."""

    def __init__(self, run):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # the optional extra is missing
            raise RuntimeError("--tensorboard needs the tensorboard package: pip install "
                               "'cascadevae[tensorboard]'") from exc
        self.run = run
        self.writer = SummaryWriter(log_dir=str(run.path / "tensorboard"))

    def on_record(self, loop, rec, due: Due):
        if not due.log:
            return
        step = rec["t"] + 1
        for key in ("loss", "recon", "kl", "mi_total", "mi_discrete"):
            if rec.get(key) is not None:
                self.writer.add_scalar(f"train/{key}", rec[key], step)
        for j, value in enumerate(rec["kl_per_dim"]):
            self.writer.add_scalar(f"kl_per_dim/z{j}", value, step)
        for j, value in enumerate(rec.get("mi_per_dim") or []):
            self.writer.add_scalar(f"mi_per_dim/z{j}", value, step)
        for key, value in (rec.get("extra") or {}).items():
            self.writer.add_scalar(f"extra/{key}", value, step)

    def on_checkpoint(self, loop):
        import numpy as np
        from PIL import Image
        for name in ("recon", "traversal", "discrete", "information"):
            path = self.run.path / "figures" / f"{name}.png"
            if path.exists():
                img = np.asarray(Image.open(path).convert("RGB"))
                self.writer.add_image(f"figures/{name}", img, loop.trainer.t, dataformats="HWC")
        self.writer.flush()

    def on_end(self, loop, status):
        self.writer.close()
