#!/usr/bin/env bash
# Every check of minis2s that needs a GPU, in one run of at most 9.5 minutes, all written
# to one results file.
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--dry-run]
#
# For a machine with an NVIDIA GPU, CuPy, PyTorch (built with CUDA), sacrebleu, pytest and
# hypothesis, and no package index: nothing is installed; minis2s runs from this checkout
# (PYTHONPATH). The corpus comes from $MINIS2S_DATA, else ../shared/data/fra-eng.zip or
# shared/data/fra-eng.zip beside the checkout. --dry-run prints the parts, their commands
# and time limits, and runs nothing (no GPU needed).
#
# The parts, each under its own time limit (the limits add up to the 9.5 minutes):
#   1. preflight (30 s): the GPU, the libraries' versions, CuPy's own check of the GPU;
#      without a working GPU the run stops here
#   2. tests (150 s): pytest -m gpu, the tests of tests/test_on_the_double.py re-run on
#      the GPU in float64 and float32 against NumPy, and tests/test_gpu.py (minis2s on
#      the GPU against PyTorch on CUDA in float64, the benchmark's GPU runs)
#   3. gradcheck (330 s, beside parts 2 and 4): every backward pass against finite
#      differences, on the GPU in float64 (each case's rows printed as it ends, so a run
#      stopped by its limit still shows what it checked)
#   4. train (150 s): the seed's experiment (preset zh, the seed's decoder) on the GPU:
#      its loss, speed and four sentences
#   5. bench (60 + 60 + 90 s): minis2s on the GPU against PyTorch with cuDNN, presets
#      zh, en and big, one run each (the benchmark's default epochs), after part 3 ends
set -u

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
OUT_DIR="${OUT:-$ROOT/gpu_check}"
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT_DIR="$2"; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) sed -n '2,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# part name | time limit (s) | command (run from the checkout's root)
PARTS=(
    "preflight|30|$PY -c 'from minis2s.backend import get_backend; b = get_backend(\"cupy\"); print(\"minis2s backend:\", b.name, b.device)'"
    "tests|150|$PY -m pytest -q -p no:cacheprovider -rfEs -m gpu tests/test_on_the_double.py tests/test_gpu.py"
    "gradcheck|330|$PY -m minis2s gradcheck --backend cupy"
    "train|150|$PY examples/train_eng_fra.py --backend cupy --models seq2seq --out \$OUT_DIR/runs"
    "bench-zh|60|$PY -m minis2s bench --backend cupy --vs-torch --preset zh --repeats 1"
    "bench-en|60|$PY -m minis2s bench --backend cupy --vs-torch --preset en --repeats 1"
    "bench-big|90|$PY -m minis2s bench --backend cupy --vs-torch --preset big --repeats 1"
)
BUDGET=570  # preflight + max(gradcheck, tests + train) + the three benches

if [ "$DRY" = 1 ]; then
    echo "gpu_check.sh: the parts it would run (from $ROOT), at most $BUDGET s in all:"
    for part in "${PARTS[@]}"; do
        IFS='|' read -r name limit cmd <<<"$part"
        printf '  %-10s %4s s  %s\n' "$name" "$limit" "$cmd"
    done
    echo "  (gradcheck runs beside tests and train; the benches start after it ends)"
    echo "results: $OUT_DIR/gpu_check.txt"
    exit 0
fi

mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
RESULTS="$OUT_DIR/gpu_check.txt"
: >"$RESULTS"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export MINIS2S_REQUIRE_GPU=1  # a GPU test that skips fails instead
export OUT_DIR
unset MINIS2S_BACKEND
if [ -z "${MINIS2S_DATA:-}" ]; then
    for candidate in "$ROOT/../shared/data/fra-eng.zip" "$ROOT/shared/data/fra-eng.zip"; do
        if [ -f "$candidate" ]; then
            export MINIS2S_DATA="$candidate"
            break
        fi
    done
fi

say() { echo "$*" | tee -a "$RESULTS"; }
declare -A STATUS SECONDS_TAKEN

# the parts' outputs go to OUT_DIR/NAME.log, then into the results file
run_part() {  # name limit command
    local name="$1" limit="$2" cmd="$3" start rc
    start=$(date +%s)
    timeout --signal=INT --kill-after=10 "$limit" bash -c "$cmd" >"$OUT_DIR/$name.log" 2>&1
    rc=$?
    SECONDS_TAKEN[$name]=$(( $(date +%s) - start ))
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        STATUS[$name]="TIMED OUT after $limit s"
    elif [ $rc -eq 0 ]; then
        STATUS[$name]="ok"
    else
        STATUS[$name]="FAILED (exit $rc)"
    fi
    record "$name" "$cmd"
}

record() {  # name command: the part's section of the results file
    local name="$1" cmd="$2"
    {
        echo
        echo "=== $name: ${STATUS[$name]}, ${SECONDS_TAKEN[$name]} s"
        echo "\$ $cmd"
        if [ "$(wc -l <"$OUT_DIR/$name.log")" -gt 400 ]; then
            head -n 100 "$OUT_DIR/$name.log"
            echo "[... $(wc -l <"$OUT_DIR/$name.log") lines in all, the rest in $name.log ...]"
            tail -n 200 "$OUT_DIR/$name.log"
        else
            cat "$OUT_DIR/$name.log"
        fi
    } >>"$RESULTS"
}

part() {  # the PARTS entry named $1: "limit|command"
    local entry
    for entry in "${PARTS[@]}"; do
        if [ "${entry%%|*}" = "$1" ]; then
            echo "${entry#*|}"
            return
        fi
    done
}

run_named() {
    local spec
    spec="$(part "$1")"
    run_part "$1" "${spec%%|*}" "${spec#*|}"
}

say "minis2s GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
say "corpus: ${MINIS2S_DATA:-none found (the tests use a made-up one; train and bench cannot run)}"
{
    echo
    echo "=== machine"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    else
        echo "nvidia-smi: not found"
    fi
    $PY - <<'EOF' 2>&1
import importlib
import platform

print("python", platform.python_version())
for name in ("numpy", "cupy", "torch", "sacrebleu", "pytest", "hypothesis", "tqdm",
             "matplotlib", "mpi4py"):
    try:
        m = importlib.import_module(name)
        print(f"{name} {getattr(m, '__version__', '?')}")
    except Exception as exc:  # what is missing is itself a result
        print(f"{name}: MISSING ({type(exc).__name__}: {exc})")
try:
    import cupy
    print("CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(), "driver",
          cupy.cuda.runtime.driverGetVersion(), "devices", cupy.cuda.runtime.getDeviceCount())
except Exception as exc:
    print("cupy CUDA:", type(exc).__name__, exc)
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available", torch.cuda.is_available(),
          "cuDNN", torch.backends.cudnn.version())
except Exception as exc:
    print("torch CUDA:", type(exc).__name__, exc)
EOF
} >>"$RESULTS"

# tqdm shows the example's progress bar; where it is missing, a silent stand-in
if ! $PY -c "import tqdm" 2>/dev/null; then
    mkdir -p "$OUT_DIR/stand-ins"
    cat >"$OUT_DIR/stand-ins/tqdm.py" <<'EOF'
"""A stand-in for tqdm where it is not installed: a bar that never shows."""


class tqdm:
    def __init__(self, *args, **kwargs):
        self.disable = True

    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass

    @classmethod
    def get_lock(cls):
        return None
EOF
    export PYTHONPATH="$PYTHONPATH:$OUT_DIR/stand-ins"
    say "tqdm missing: a silent stand-in is used"
fi

run_named preflight
if [ "${STATUS[preflight]}" != ok ]; then
    say ""
    say "no usable GPU through CuPy: stopping after the preflight (see above)"
    exit 1
fi

# gradcheck in the background, beside the tests and the training
spec="$(part gradcheck)"
start_gradcheck=$(date +%s)
timeout --signal=INT --kill-after=10 "${spec%%|*}" bash -c "${spec#*|}" \
    >"$OUT_DIR/gradcheck.log" 2>&1 &
gradcheck_pid=$!

run_named tests
if [ -n "${MINIS2S_DATA:-}" ]; then
    run_named train
else
    STATUS[train]="not run (no corpus)"; SECONDS_TAKEN[train]=0
fi

wait "$gradcheck_pid"
rc=$?
SECONDS_TAKEN[gradcheck]=$(( $(date +%s) - start_gradcheck ))
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    STATUS[gradcheck]="TIMED OUT after ${spec%%|*} s"
elif [ $rc -eq 0 ]; then
    STATUS[gradcheck]="ok"
else
    STATUS[gradcheck]="FAILED (exit $rc)"
fi
record gradcheck "${spec#*|}"

for preset in zh en big; do
    if [ -n "${MINIS2S_DATA:-}" ]; then
        run_named "bench-$preset"
    else
        STATUS[bench-$preset]="not run (no corpus)"; SECONDS_TAKEN[bench-$preset]=0
    fi
done

{
    echo
    echo "=== summary"
    for name in preflight tests gradcheck train bench-zh bench-en bench-big; do
        printf '%-10s %5s s  %s\n' "$name" "${SECONDS_TAKEN[$name]}" "${STATUS[$name]}"
    done
} | tee -a "$RESULTS"
echo "results: $RESULTS"
for name in preflight tests gradcheck train bench-zh bench-en bench-big; do
    [ "${STATUS[$name]}" = ok ] || exit 1
done
exit 0
