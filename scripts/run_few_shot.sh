#!/usr/bin/env bash
# The few-shot protocol: for each dataset and number of shots, train and test on all classes over the seeds.
# Stopped and started again, it skips every finished run and resumes or re-runs the others.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SHOTS_LIST, SEEDS, DATA, OUTPUT)"

sweep --protocol few_shot --trainers "${1:-${DEFAULT_TRAINER}}" ${2:+--cfg "$2"} \
    ${DATASETS:+--datasets ${DATASETS}} --seeds ${SEEDS} ${SHOTS_LIST:+--shots ${SHOTS_LIST}}
