#!/usr/bin/env bash
# The base-to-novel protocol: for each dataset and seed, train on the base classes, then test on the new ones.
# Stopped and started again, it skips every finished run and resumes or re-runs the others.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SEEDS, DATA, OUTPUT)"

sweep --protocol base2new --trainers "${1:-${DEFAULT_TRAINER}}" ${2:+--cfg "$2"} \
    ${DATASETS:+--datasets ${DATASETS}} --seeds ${SEEDS}
