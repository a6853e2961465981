#!/usr/bin/env bash
# The cross-dataset protocol: for each seed, train on ImageNet, then test on the 10 other datasets.
# Stopped and started again, it skips every finished run and resumes or re-runs the others.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SEEDS, DATA, OUTPUT)"

sweep --protocol cross_dataset --trainers "${1:-${DEFAULT_TRAINER}}" ${2:+--cfg "$2"} \
    ${DATASETS:+--datasets ${DATASETS}} --seeds ${SEEDS}
