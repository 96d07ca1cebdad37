"""``python -m cascadevae.train``: the training command (:mod:`cascadevae.training.cli`).

One update t (counted from 0, see :mod:`cascadevae.schedule`):

1. a batch of indices from the run's data-order generator (numpy, seeded from the config
   seed, its state checkpointed), uniformly with replacement;
2. ``model.posterior(x)``: encode once, sample z once (from the run's own torch generator);
3. the codes d: ``model.decoder_code(x, z, t, train=True)`` (the exact assignment with lambda'
   from t_d on, zeros before; none for models without a code);
4. ``model.loss_terms(x, d, schedule.betas(t), posterior=post)``, backward, one Adam step
   (``weight_decay`` as Adam's coupled L2 term, i.e. an L2 penalty added to the loss);
5. with ``fresh_optimizer_per_stage``, a new Adam state whenever ``optimizer_reset(t)``.

The run directory (``--out``) gets config.json, run.json, metrics.jsonl, checkpoint.pt and
summary.json (see :mod:`cascadevae.run_dir`). ``--resume RUN_DIR`` continues a run exactly
(bitwise on CPU). Ctrl-C (or SIGTERM) writes a checkpoint and exits; a non-finite loss stops
the run and keeps the last good checkpoint. Every checkpoint also writes figures into
RUN_DIR/figures/ unless ``--no-figures``.
"""
import sys

from .training.cli import main
from .training.session import EXIT_INTERRUPTED, EXIT_NONFINITE, EXIT_OK, EXIT_USAGE  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
