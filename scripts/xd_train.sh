#!/usr/bin/env bash
# Cross-dataset and domain generalization, step 1: train on ImageNet (all classes, 16 shots); the final test of
# the run is the ImageNet (source) accuracy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 1 && $# -le 3 ]] || usage "SEED [TRAINER] [CFG]"

SEED=$1
TRAINER=${2:-${DEFAULT_TRAINER}}
CFG=${3:-}

sweep --protocol cross_dataset --phase train --seeds "${SEED}" --trainers "${TRAINER}" ${CFG:+--cfg "${CFG}"}
