#!/usr/bin/env bash
# The end-to-end demonstration behind docs/results.md: beta-VAE, CascadeVAE-C and CascadeVAE
# (and the baselines of docs/baselines.md) on MNIST-5k and procedural dSprites, several seeds,
# the same reduced budget for every model, evaluated and aggregated.
#
#   bash docs/demo/run_demo.sh [OUT_DIR] [JOBS]      (default runs/demo, 2 jobs in parallel)
#
# Every run uses one thread (OMP_NUM_THREADS=1) and JOBS runs share the machine. Budgets:
# MNIST_ITERS updates on MNIST-5k, DSPRITES_ITERS on dSprites (the paper: 1.2e5 and 3e5);
# --iters below a preset's budget scales its schedule (r, t_d) proportionally.
# A run that already finished is skipped, one that was interrupted is resumed, so the script
# can be re-run after an interruption.
set -euo pipefail
OUT=${1:-runs/demo}
JOBS=${2:-2}
MNIST_ITERS=${MNIST_ITERS:-3000}
DSPRITES_ITERS=${DSPRITES_ITERS:-2000}
MNIST_SEEDS=${MNIST_SEEDS:-"1 2 3"}
DSPRITES_SEEDS=${DSPRITES_SEEDS:-"1 2"}
MODELS=${MODELS:-"cascade cascade-c beta-vae"}
mkdir -p "$OUT"

# model -> extra arguments, per dataset. MNIST: the paper's MNIST networks and settings
# (preset mnist) with the other models' betas set explicitly; dSprites: each model's own
# dSprites preset (beta-VAE beta = 4 with m = 10, CascadeVAE-C m = 10, CascadeVAE m = 6, S = 3).
mnist_args() {
  case $1 in
    cascade) echo "--preset mnist" ;;
    cascade-c) echo "--preset mnist --model cascade-c --set num_classes=0 --set discrete_warmup=None" ;;
    beta-vae) echo "--preset mnist --model beta-vae --set beta=4 --set beta_high=None --set beta_low=None --set relieve_every=None --set discrete_warmup=None --set num_classes=0" ;;
    *) echo "--preset $1-mnist" ;;
  esac
}
dsprites_args() {
  case $1 in
    cascade) echo "--preset dsprites" ;;
    cascade-c|beta-vae) echo "--preset $1" ;;
    *) echo "--preset $1" ;;
  esac
}

# seed-major order, so that whole seeds (every model) finish first
cmds=()
for seed in $(printf '%s\n' $MNIST_SEEDS $DSPRITES_SEEDS | sort -un); do
  for model in $MODELS; do
    case " $MNIST_SEEDS " in *" $seed "*)
      cmds+=("mnist5k/$model-s$seed|$(mnist_args "$model") --dataset mnist5k --iters $MNIST_ITERS --seed $seed") ;;
    esac
    case " $DSPRITES_SEEDS " in *" $seed "*)
      cmds+=("dsprites/$model-s$seed|$(dsprites_args "$model") --dataset dsprites --iters $DSPRITES_ITERS --seed $seed") ;;
    esac
  done
done

run_one() {
  local name=${1%%|*} args=${1#*|} dir="$OUT/${1%%|*}"
  if [ -f "$dir/summary.json" ] && grep -q '"status": "finished"' "$dir/summary.json"; then
    echo "done already: $dir"; return 0
  fi
  mkdir -p "$(dirname "$dir")"
  if [ -f "$dir/checkpoint.pt" ]; then
    OMP_NUM_THREADS=1 python -m cascadevae.train --resume "$dir" --device cpu --no-progress \
      > "$dir.log" 2>&1
  else
    rm -rf "$dir"
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 python -m cascadevae.train $args --out "$dir" --device cpu --no-progress \
      --keep-checkpoints --checkpoint-every 500 > "$dir.log" 2>&1
  fi
  echo "finished: $dir ($(tail -n 1 "$dir.log"))"
}
export -f run_one
export OUT
printf '%s\n' "${cmds[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}

python -m cascadevae.report "$OUT/mnist5k" --out "$OUT/report-mnist5k"
python -m cascadevae.report "$OUT/dsprites" --out "$OUT/report-dsprites"
