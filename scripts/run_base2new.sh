#!/usr/bin/env bash
# The base-to-novel protocol: for each dataset and seed, train on the base classes, then test on the new ones.
# Stopped and started again, it skips every finished run and resumes or re-runs the others.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SEEDS, DATA, OUTPUT)"

for DATASET in ${DATASETS:-${BASE2NEW_DATASETS}}; do
    for SEED in ${SEEDS}; do
        bash "${SCRIPTS}/base2new_train.sh" "${DATASET}" "${SEED}" "$@"
        bash "${SCRIPTS}/base2new_test.sh" "${DATASET}" "${SEED}" "$@"
    done
done
