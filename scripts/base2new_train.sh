#!/usr/bin/env bash
# Base-to-novel, step 1: train on the base classes (16 shots); the final test of the run is the base accuracy.
# Zero-shot CLIP trains nothing: its run is an evaluation on the base classes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 2 && $# -le 4 ]] || usage "DATASET SEED [TRAINER] [CFG]"

DATASET=$1
SEED=$2
TRAINER=${3:-${DEFAULT_TRAINER}}
CFG=${4:-}

sweep --protocol base2new --phase train --datasets "${DATASET}" --seeds "${SEED}" --trainers "${TRAINER}" \
    ${CFG:+--cfg "${CFG}"}
