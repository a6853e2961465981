#!/usr/bin/env bash
# The whole base-to-novel protocol on the generated demo dataset with the demo backbone (offline, CPU, minutes):
# zero-shot CLIP, MMA, RMAdapter and R-MMA over seeds 1-3, two runs at a time, then the leaderboard
# (output/demo/leaderboard/). Interrupted and started again, it finishes what is left. Each run's whole output is
# in its log.txt; --verbose shows it on the terminal too.
#
#   bash scripts/demo.sh [--verbose]        (env: DATA, OUTPUT, SEEDS, WORKERS, ISOLATE)
set -euo pipefail
export OUTPUT=${OUTPUT:-output/demo}
# The tiny model's operations are too small for intra-op threads: one thread per run is the fastest, and
# measured ~100x faster per training step than two threads when other processes share the cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source "$(dirname "$0")/lib.sh"
[[ $# -eq 0 || ( $# -eq 1 && $1 == --verbose ) ]] || usage "[--verbose]   (env: DATA, OUTPUT, SEEDS, WORKERS, ISOLATE)"

"${PYTHON}" -m harness.sweep launch --protocol base2new --datasets demo --cfg demo --seeds ${SEEDS} \
    --trainers ZeroshotCLIP MMA RMAdapter RMMA --launcher local --workers "${WORKERS:-2}" \
    --root "${DATA}" --output "${OUTPUT}" ${ISOLATE:+--isolate} "$@"
"${PYTHON}" -m harness.results.leaderboard "${OUTPUT}"
