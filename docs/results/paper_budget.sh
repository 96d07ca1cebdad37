#!/usr/bin/env bash
# The paper-budget runs of docs/results.md: evaluate every finished run, report them, and copy
# the small outputs (JSON, figures; never checkpoints) into docs/results/paper-budget/.
#
#   bash docs/results/paper_budget.sh RUNS [OUT [BUDGET]]
#
# RUNS: the folder of run directories (RUNS/mnist5k/*, RUNS/dsprites/*); OUT: where the
# outputs go (default docs/results/paper-budget); BUDGET: the tables' title words (default
# "at the paper's budget"). The dSprites runs of one working day used
#   bash docs/results/paper_budget.sh RUNS docs/results/dsprites-2e4 "at 2e4 updates (1/15 of the paper's)"
# and the CascadeVAE runs of 1e5 updates (RUNS/dsprites/cascade-m6-s1, -s2; four working days)
#   bash docs/results/paper_budget.sh RUNS docs/results/dsprites-1e5 "at 1e5 updates (1/3 of the paper's)"
# With RUNS = OUT the reports are regenerated from the copies already in OUT (no RUNS needed).
#
# The runs themselves were trained one thread each, two at a time, outside the work tree, and
# continued across working days with --resume (each run's exact command is in its run.json):
#   python -m cascadevae.train --preset mnist --dataset mnist5k --seed K --threads 1 \
#       --keep-checkpoints --checkpoint-every 10000 --no-eval --out RUNS/mnist5k/cascade-m10-sK
#   python -m cascadevae.train --preset joint-vae-mnist --dataset mnist5k --seed K --iters 120000 \
#       --threads 1 --keep-checkpoints --checkpoint-every 10000 --no-eval --out RUNS/mnist5k/joint-m10-sK
#   python -m cascadevae.train --resume RUNS/mnist5k/cascade-m10-sK     # after an interruption
set -euo pipefail
RUNS=$(realpath "${1:?usage: paper_budget.sh RUNS [OUT [BUDGET]]}")
cd "$(dirname "$0")/../.."
OUT=${2:-docs/results/paper-budget}
BUDGET=${3:-"at the paper's budget"}

for dataset in mnist5k dsprites; do
  [ -d "$RUNS/$dataset" ] || continue
  found=0
  src="$RUNS/$dataset"
  [ "$RUNS" = "$(realpath -m "$OUT")" ] && src="$OUT/$dataset/runs"   # regenerate from the copies
  for run in "$src"/*/; do
    run=${run%/}
    grep -q '"status": "finished"' "$run/summary.json" 2>/dev/null || continue   # still training
    found=1
    # the final checkpoint (eval.json) and the label-based selection over the kept checkpoints;
    # what was evaluated before with the same options is kept (an interrupted evaluation goes
    # on where it stopped), and a copy (no checkpoint.pt) brings its own evaluation
    if [ -f "$run/checkpoint.pt" ]; then
      python -m cascadevae.evaluate "$run" --best-by-label --keep-existing
    fi
    dest="$OUT/$dataset/runs/$(basename "$run")"
    [ "$(realpath "$run")" = "$(realpath -m "$dest")" ] && continue   # a copy already
    mkdir -p "$dest"
    cp "$run"/{config.json,run.json,summary.json,eval.json,eval_best_by_label.json,eval_history.json} "$dest/"
    cp "$run"/figures/{information.png,eval_traversal.png,eval_discrete.png} "$dest/" 2>/dev/null || true
  done
  [ "$found" = 1 ] || continue
  # every metric per run (final checkpoint), then both selections beside the paper's numbers;
  # reported from the copies (every run copied into OUT, so start from an empty OUT when
  # runs were dropped), so the tables name the runs by their place in the repository
  # (not by this machine's RUNS path) and the reports can be regenerated from the repository:
  #   bash docs/results/paper_budget.sh docs/results/dsprites-2e4 docs/results/dsprites-2e4 "..."
  python -m cascadevae.report "$OUT/$dataset/runs" --out "$OUT/$dataset" \
      --title "$dataset $BUDGET, every metric"
  python -m cascadevae.report "$OUT/$dataset/runs" --selection both --out "$OUT/$dataset" \
      --title "$dataset $BUDGET: final and best-by-label selections"
done
