#!/usr/bin/env bash
# Base-to-novel, step 2: evaluate the base-trained model on the new classes (LOAD_EPOCH: the config's
# OPTIM.MAX_EPOCH unless given).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 2 && $# -le 5 ]] || usage "DATASET SEED [TRAINER] [CFG] [LOAD_EPOCH]"

DATASET=$1
SEED=$2
TRAINER=${3:-${DEFAULT_TRAINER}}
CFG=${4:-$(default_cfg "${TRAINER}" base2new "${DATASET}")}
LOAD_EPOCH=${5:-}

COMMON_DIR=${DATASET}/shots_${PROTOCOL_SHOTS}/${TRAINER}/${CFG}/seed${SEED}
MODEL_DIR=${OUTPUT}/base2new/train_base/${COMMON_DIR}
DIR=${OUTPUT}/base2new/test_new/${COMMON_DIR}
run_evaluation "${DIR}" "${DATASET}" "${SEED}" "${TRAINER}" "${CFG}" "${MODEL_DIR}" "${LOAD_EPOCH}" \
    DATASET.NUM_SHOTS "${PROTOCOL_SHOTS}" DATASET.SUBSAMPLE_CLASSES new
