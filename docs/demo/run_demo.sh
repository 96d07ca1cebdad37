#!/usr/bin/env bash
# The end-to-end demonstration behind docs/results.md: CascadeVAE, CascadeVAE-C, beta-VAE and
# the baselines JointVAE and FactorVAE on MNIST-5k and procedural dSprites, the same reduced
# budget for every model of a dataset, each run evaluated at its end, then aggregated.
#
#   bash docs/demo/run_demo.sh [OUT_DIR] [JOBS]      (default runs/demo, 2 runs at a time)
#
# Every run uses one thread (OMP_NUM_THREADS=1). Budgets: MNIST_ITERS updates on MNIST-5k,
# DSPRITES_ITERS on dSprites (the paper: 1.2e5 and 3e5); --iters below a preset's budget
# scales its schedule (r, t_d, JointVAE's capacity ramp) proportionally. RUNS lists the runs as
# dataset/model-sSEED (default: the runs of docs/results.md). A finished run is skipped, so
# the script can be re-run after an interruption (an unfinished run starts again).
set -euo pipefail
OUT=${1:-runs/demo}
JOBS=${2:-2}
MNIST_ITERS=${MNIST_ITERS:-3000}
DSPRITES_ITERS=${DSPRITES_ITERS:-2000}
RUNS=${RUNS:-"
  mnist5k/cascade-s1 mnist5k/cascade-c-s1 mnist5k/beta-vae-s1
  dsprites/cascade-s1 dsprites/cascade-c-s1 dsprites/beta-vae-s1
  mnist5k/cascade-s2 dsprites/cascade-s2 dsprites/factor-vae-s1 mnist5k/joint-vae-s1
  mnist5k/cascade-c-s2 mnist5k/beta-vae-s2 dsprites/joint-vae-s1 dsprites/cascade-c-s2
  mnist5k/joint-vae-s2 dsprites/beta-vae-s2
  mnist5k/cascade-s3 mnist5k/cascade-c-s3 mnist5k/beta-vae-s3
"}
mkdir -p "$OUT"

# dataset/model -> the training arguments. MNIST: the paper's MNIST networks and settings
# (preset mnist) with the other models' betas set explicitly; dSprites: each model's own
# dSprites preset (beta-VAE beta = 4 and CascadeVAE-C with m = 10, CascadeVAE m = 6, S = 3).
train_args() {
  case $1 in
    mnist5k/cascade) echo "--preset mnist" ;;
    mnist5k/cascade-c) echo "--preset mnist --model cascade-c --set num_classes=0 --set discrete_warmup=None" ;;
    mnist5k/beta-vae) echo "--preset mnist --model beta-vae --set beta=4 --set beta_high=None --set beta_low=None --set relieve_every=None --set discrete_warmup=None --set num_classes=0" ;;
    mnist5k/joint-vae) echo "--preset joint-vae-mnist" ;;
    dsprites/cascade) echo "--preset dsprites" ;;
    dsprites/joint-vae) echo "--preset joint-vae-dsprites" ;;
    dsprites/*) echo "--preset ${1#dsprites/}" ;;
    *) echo "unknown run $1" >&2; return 1 ;;
  esac
}

run_one() {
  local name=$1 dir="$OUT/$1" dataset=${1%%/*} model seed iters
  model=${1#*/}; seed=${model##*-s}; model=${model%-s*}
  iters=$([ "$dataset" = mnist5k ] && echo "$MNIST_ITERS" || echo "$DSPRITES_ITERS")
  if [ -f "$dir/summary.json" ] && grep -q '"status": "finished"' "$dir/summary.json"; then
    echo "done already: $dir"; return 0
  fi
  rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=1 python -m cascadevae.train $(train_args "$dataset/$model") \
    --dataset "$dataset" --iters "$iters" --seed "$seed" --out "$dir" --device cpu \
    --no-progress --keep-checkpoints --checkpoint-every 500 > "$dir.log" 2>&1
  echo "finished: $dir ($(tail -n 1 "$dir.log"))"
}
export -f run_one train_args
export OUT MNIST_ITERS DSPRITES_ITERS
printf '%s\n' $RUNS | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}

for dataset in mnist5k dsprites; do
  if [ -d "$OUT/$dataset" ]; then
    python -m cascadevae.report "$OUT/$dataset" --out "$OUT/report-$dataset"
  fi
done
