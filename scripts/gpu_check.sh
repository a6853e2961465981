#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py): every trainer's CUDA path at fp32, fp16 and amp on the demo and on ViT-B/16
# random weights, amp vs fp32 agreement, ms/image per method, cached vs uncached evaluation input; one summary
# table; exit status 1 if a check failed. Under 8 minutes on one GPU. Without CUDA (or with --cpu) it runs a short
# CPU mode that only shows the script works.
#
#   bash scripts/gpu_check.sh [--cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" scripts/gpu_check.py "$@"
