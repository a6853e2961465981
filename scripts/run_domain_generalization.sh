#!/usr/bin/env bash
# The domain-generalization protocol: for each seed, train on ImageNet (the cross-dataset runs, shared), then test
# on ImageNet-V2, -Sketch, -A and -R.
# Stopped and started again, it skips every finished run and resumes or re-runs the others.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SEEDS, DATA, OUTPUT)"

sweep --protocol domain_generalization --trainers "${1:-${DEFAULT_TRAINER}}" ${2:+--cfg "$2"} \
    ${DATASETS:+--datasets ${DATASETS}} --seeds ${SEEDS}
