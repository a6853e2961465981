#!/usr/bin/env bash
# The whole base-to-novel protocol on the generated demo dataset with the tiny backbone (offline, CPU, minutes):
# zero-shot CLIP, MMA, RMAdapter and R-MMA over seeds 1-3, then the leaderboard (output/demo/leaderboard/).
# Interrupted and started again, it finishes what is left.
set -euo pipefail
export OUTPUT=${OUTPUT:-output/demo} DATASETS=demo
# The tiny model's operations are too small for intra-op threads: one thread per run is the fastest, and
# measured ~100x faster per training step than two threads when other processes share the cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source "$(dirname "$0")/lib.sh"
[[ $# -eq 0 ]] || usage "(no arguments; env: DATA, OUTPUT, SEEDS)"

for TRAINER in ZeroshotCLIP MMA RMAdapter RMMA; do
    bash "${SCRIPTS}/run_base2new.sh" "${TRAINER}" demo
done
"${PYTHON}" -m harness.results.leaderboard "${OUTPUT}"
