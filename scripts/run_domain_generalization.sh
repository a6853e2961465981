#!/usr/bin/env bash
# The domain-generalization protocol: for each seed, train on ImageNet (shared with the cross-dataset protocol),
# then test on ImageNet-V2, -Sketch, -A and -R.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SEEDS, DATA, OUTPUT)"

for SEED in ${SEEDS}; do
    bash "${SCRIPTS}/xd_train.sh" "${SEED}" "$@"
    for DATASET in ${DATASETS:-${DOMAIN_GENERALIZATION_TARGETS}}; do
        bash "${SCRIPTS}/xd_test.sh" "${DATASET}" "${SEED}" "$@"
    done
done
