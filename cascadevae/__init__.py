"""cascadevae: CascadeVAE (Jeong & Song, ICML 2019), learning disentangled continuous and
discrete factors, with a fast exact solver for its per-batch discrete assignment.

    import cascadevae as cv
    run = cv.fit("mnist", dataset="mnist5k", iters=2000, out="runs/demo")
    codes, z = run.model.predict_codes(images), run.model.encode(images)

The native kernels live in the extension module :mod:`cascadevae_ext`. This package holds the
models (:mod:`.models`), their config (:mod:`.config`, :mod:`.presets`), the training layer
(:mod:`.training`, ``python -m cascadevae.train``), datasets, metrics, evaluation and reports.
"""
__version__ = "0.1.0"

from .api import Run, TrainedModel, fit, load_run  # noqa: E402
from .config import TrainConfig  # noqa: E402
from .presets import get_preset, preset_names  # noqa: E402

__all__ = ["fit", "load_run", "Run", "TrainedModel", "TrainConfig", "get_preset",
           "preset_names", "__version__"]
