#!/usr/bin/env bash
# Zero-shot CLIP and MMA on the generated demo dataset with the tiny backbone: offline, CPU, seconds.
# Run from the repository root: bash scripts/demo.sh
set -euo pipefail
DATA=${DATA:-data}
OUT=${OUT:-output/demo}
SEED=1
COMMON=(--root "${DATA}" --seed "${SEED}" --dataset-config-file configs/datasets/demo.yaml)

python train.py "${COMMON[@]}" --trainer ZeroshotCLIP --config-file configs/trainers/ZeroshotCLIP/demo.yaml \
    --output-dir "${OUT}/ZeroshotCLIP/seed${SEED}" --eval-only DATASET.SUBSAMPLE_CLASSES base

python train.py "${COMMON[@]}" --trainer MMA --config-file configs/trainers/MMA/demo.yaml \
    --output-dir "${OUT}/MMA/train_base/seed${SEED}" DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base
python train.py "${COMMON[@]}" --trainer MMA --config-file configs/trainers/MMA/demo.yaml \
    --output-dir "${OUT}/MMA/test_new/seed${SEED}" --eval-only --model-dir "${OUT}/MMA/train_base/seed${SEED}" \
    --load-epoch 20 DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES new
