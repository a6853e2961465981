#!/usr/bin/env bash
# The cross-dataset protocol: for each seed, train on ImageNet, then test on the 10 other datasets.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SEEDS, DATA, OUTPUT)"

for SEED in ${SEEDS}; do
    bash "${SCRIPTS}/xd_train.sh" "${SEED}" "$@"
    for DATASET in ${DATASETS:-${CROSS_DATASET_TARGETS}}; do
        bash "${SCRIPTS}/xd_test.sh" "${DATASET}" "${SEED}" "$@"
    done
done
