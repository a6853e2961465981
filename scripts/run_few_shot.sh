#!/usr/bin/env bash
# The few-shot protocol: for each dataset and number of shots, train and test on all classes over the seeds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SHOTS_LIST, SEEDS, DATA, OUTPUT)"

for DATASET in ${DATASETS:-${BASE2NEW_DATASETS}}; do
    for SHOTS in ${SHOTS_LIST:-1 2 4 8 16}; do
        bash "${SCRIPTS}/few_shot.sh" "${DATASET}" "${SHOTS}" "$@"
    done
done
