#!/usr/bin/env bash
# The GPU checks of issue 7 in one call, for a machine with an NVIDIA GPU (written for an H100):
#   1. environment: GPU, driver, nvcc, torch with CUDA;
#   2. build cascadevae_ext with its CUDA kernels (CMake + Ninja, offline, for this GPU's
#      architecture only, about 30 s on 16 cores) into build/gpu-check;
#   3. the GPU tests and the CPU tests of the GPU path's host pieces (about 1-2 minutes);
#   4. benchmarks/bench_gpu.py (about 1-2 minutes).
# Budget: about 5 minutes, each stage under its own timeout, 8 minutes at most in all.
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#   QUICK=1 bash benchmarks/gpu_check.sh    # bench_gpu.py --quick
#
# Logs, the JUnit XML of the tests and the benchmark JSON go to $OUT (the device tool's folder
# that comes back) if set, else to benchmarks/results/gpu_check/. Exit status: 0 when every
# stage passed, else the number of the first stage that failed.
set -u
cd "$(dirname "$0")/.."
START=$(date +%s)
DEST=${OUT:-benchmarks/results/gpu_check}
mkdir -p "$DEST"
PY=${PYTHON:-python3}
BUILD=${BUILD_DIR:-build/gpu-check}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
say() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*"; }
fail() { say "FAILED: $2"; echo "stage $1 failed: $2" > "$DEST/status.txt"; exit "$1"; }

say "1. environment"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | tee "$DEST/env.txt"
(nvcc --version | tail -2; cmake --version | head -1; ninja --version) 2>&1 | tee -a "$DEST/env.txt"
$PY - <<'EOF' 2>&1 | tee -a "$DEST/env.txt"
import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
assert torch.cuda.is_available(), "torch sees no CUDA device"
print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
EOF
[ "${PIPESTATUS[0]}" -eq 0 ] || fail 1 "torch with CUDA"
ARCH=${CASCADEVAE_CUDA_ARCHITECTURES:-$($PY -c 'import torch; a, b = torch.cuda.get_device_capability(0); print(f"{a}{b}")')}

say "2. build (CUDA architectures $ARCH) into $BUILD"
GEN=$(command -v ninja >/dev/null && echo Ninja || echo "Unix Makefiles")
timeout 120 cmake -S . -B "$BUILD" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DCASCADEVAE_CUDA_ARCHITECTURES="$ARCH" \
  -DPython_EXECUTABLE="$(command -v $PY)" -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" > "$DEST/build.log" 2>&1 \
  || { tail -30 "$DEST/build.log"; fail 2 "cmake configure"; }
T0=$(date +%s)
timeout 300 cmake --build "$BUILD" -j "$(nproc)" >> "$DEST/build.log" 2>&1 || { tail -40 "$DEST/build.log"; fail 2 "build"; }
echo "build wall $(( $(date +%s) - T0 )) s" | tee -a "$DEST/build.log"
grep -iE "warning" "$DEST/build.log" | tail -20
BUILD_ABS=$(cd "$BUILD" && pwd)
export PYTHONPATH="$BUILD_ABS:$PWD${PYTHONPATH:+:$PYTHONPATH}"  # first: not an older installed build
BUILD_ABS="$BUILD_ABS" $PY -c '
import os, cascadevae_ext as c
i = c.build_info(); print(c.__file__, i)
assert os.path.dirname(c.__file__) == os.environ["BUILD_ABS"], "imported another build"
assert i["cuda_compiled"] and i["cuda_devices"] > 0' 2>&1 | tee -a "$DEST/env.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail 2 "the built module is not imported, has no CUDA kernels or sees no device"

say "3. tests"
timeout 240 $PY -m pytest -q -rs tests/test_gpu.py tests/test_kernels.py tests/test_device_step.py \
  tests/test_discrete_step.py --junitxml="$DEST/tests.xml" 2>&1 | tee "$DEST/tests.log" | tail -40
TEST_STATUS=${PIPESTATUS[0]}

say "4. benchmarks"
timeout 300 $PY benchmarks/bench_gpu.py ${QUICK:+--quick} --json "$DEST/gpu.json" 2>&1 | tee "$DEST/bench.log"
BENCH_STATUS=${PIPESTATUS[0]}

say "done: tests exit $TEST_STATUS, benchmark exit $BENCH_STATUS"
if [ "$TEST_STATUS" -ne 0 ]; then echo "stage 3 failed: tests exit $TEST_STATUS" > "$DEST/status.txt"; exit 3; fi
if [ "$BENCH_STATUS" -ne 0 ]; then echo "stage 4 failed: bench exit $BENCH_STATUS" > "$DEST/status.txt"; exit 4; fi
echo "ok" > "$DEST/status.txt"
