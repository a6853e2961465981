#!/usr/bin/env bash
# Few-shot classification: train on SHOTS images per class of all classes, for each seed of SEEDS; the final
# test of each run is its accuracy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 2 && $# -le 4 ]] || usage "DATASET SHOTS [TRAINER] [CFG]"

DATASET=$1
SHOTS=$2
TRAINER=${3:-${DEFAULT_TRAINER}}
CFG=${4:-}

sweep --protocol few_shot --datasets "${DATASET}" --shots "${SHOTS}" --seeds ${SEEDS} --trainers "${TRAINER}" \
    ${CFG:+--cfg "${CFG}"}
