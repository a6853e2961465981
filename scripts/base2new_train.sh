#!/usr/bin/env bash
# Base-to-novel, step 1: train on the base classes (16 shots); the final test of the run is the base accuracy.
# Zero-shot CLIP trains nothing: its run is an evaluation on the base classes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 2 && $# -le 4 ]] || usage "DATASET SEED [TRAINER] [CFG]"

DATASET=$1
SEED=$2
TRAINER=${3:-${DEFAULT_TRAINER}}
CFG=${4:-$(default_cfg "${TRAINER}" base2new "${DATASET}")}

DIR=${OUTPUT}/base2new/train_base/${DATASET}/shots_${PROTOCOL_SHOTS}/${TRAINER}/${CFG}/seed${SEED}
run_training "${DIR}" "${DATASET}" "${SEED}" "${TRAINER}" "${CFG}" \
    DATASET.NUM_SHOTS "${PROTOCOL_SHOTS}" DATASET.SUBSAMPLE_CLASSES base
