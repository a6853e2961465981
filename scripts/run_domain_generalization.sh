#!/usr/bin/env bash
# The domain-generalization protocol: the cross-dataset loop (its ImageNet training runs are shared) with
# ImageNet-V2, -Sketch, -A and -R as the targets.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -le 2 ]] || usage "[TRAINER] [CFG]   (env: DATASETS, SEEDS, DATA, OUTPUT)"

DATASETS=${DATASETS:-${DOMAIN_GENERALIZATION_TARGETS}} exec bash "${SCRIPTS}/run_cross_dataset.sh" "$@"
