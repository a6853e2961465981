#!/usr/bin/env bash
# Base-to-novel, step 2: evaluate the base-trained model on the new classes (LOAD_EPOCH: the config's
# OPTIM.MAX_EPOCH unless given).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 2 && $# -le 5 ]] || usage "DATASET SEED [TRAINER] [CFG] [LOAD_EPOCH]"

DATASET=$1
SEED=$2
TRAINER=${3:-${DEFAULT_TRAINER}}
CFG=${4:-}
LOAD_EPOCH=${5:-}

sweep --protocol base2new --phase test --datasets "${DATASET}" --seeds "${SEED}" --trainers "${TRAINER}" \
    ${CFG:+--cfg "${CFG}"} ${LOAD_EPOCH:+--load-epoch "${LOAD_EPOCH}"}
