#!/usr/bin/env bash
# Cross-dataset and domain generalization, step 2: evaluate the ImageNet-trained model on another dataset (all
# classes): one of the 10 cross-dataset targets, or imagenetv2 / imagenet_sketch / imagenet_a / imagenet_r.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 2 && $# -le 5 ]] || usage "DATASET SEED [TRAINER] [CFG] [LOAD_EPOCH]"

DATASET=$1
SEED=$2
TRAINER=${3:-${DEFAULT_TRAINER}}
CFG=${4:-}
LOAD_EPOCH=${5:-}
# ImageNet is the source: its accuracy is the final test of xd_train.sh.
[[ ${DATASET} != imagenet ]] || usage "DATASET SEED [TRAINER] [CFG] [LOAD_EPOCH]   (DATASET: a target, not imagenet)"
PROTOCOL=$("${PYTHON}" -m harness.protocols target-protocol "${DATASET}")

sweep --protocol "${PROTOCOL}" --phase test --datasets "${DATASET}" --seeds "${SEED}" --trainers "${TRAINER}" \
    ${CFG:+--cfg "${CFG}"} ${LOAD_EPOCH:+--load-epoch "${LOAD_EPOCH}"}
