# Sourced by the protocol scripts (never run on its own): settings, defaults, and the one rule of crash safety:
# a run folder is finished only when it holds its result record (metrics.json, written last by train.py).
# A finished run is skipped; any other run is started, or started again: a training run resumes from its last
# checkpoint (Dassl's resume), an evaluation runs again from the start.
#
# Environment: DATA (dataset root, default data/), OUTPUT (root of the output layouts, default output),
# PYTHON (default python), SEEDS (seeds of the loops, default "1 2 3"),
# DATASETS (datasets of the loops, default the protocol's), SHOTS_LIST (few-shot loop, default "1 2 4 8 16").

DATA=${DATA:-data/}
OUTPUT=${OUTPUT:-output}
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-1 2 3}
SCRIPTS=$(dirname "${BASH_SOURCE[0]}")
RECORD=metrics.json
DEFAULT_TRAINER=RMAdapter
# Shots of the base-to-novel, cross-dataset and domain-generalization protocols.
PROTOCOL_SHOTS=16

# The protocols' datasets (CoOp's config names), as harness/results/layout.py reads them back.
CROSS_DATASET_TARGETS="caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd
    eurosat ucf101"
BASE2NEW_DATASETS="imagenet ${CROSS_DATASET_TARGETS}"
DOMAIN_GENERALIZATION_TARGETS="imagenetv2 imagenet_sketch imagenet_a imagenet_r"

# Killing a run mid-training and running it again must give the metrics of an uninterrupted run. A checkpoint
# holds no RNG state, so resuming from a mid-training epoch draws other batches and augmentations than the
# uninterrupted run (measured on the demo: weights differ by up to 0.018). Training runs therefore save only
# their last epoch: a run killed before it starts over (same seed, same result); a run killed after it (during
# the final test) resumes there and only tests.
TRAINING_OPTS=(TRAIN.CHECKPOINT_FREQ 0)

if [[ ! -f train.py ]]; then
    echo "Run the scripts from the repository root (bash scripts/$(basename "$0") ...)" >&2
    exit 2
fi

usage() {  # usage "ARGUMENTS": the one-line usage message, then exit
    echo "Usage: bash scripts/$(basename "$0") $1" >&2
    exit 2
}

trains_nothing() {  # trains_nothing TRAINER: true for zero-shot CLIP, whose "training" run is an evaluation
    [[ $1 == ZeroshotCLIP ]]
}

default_cfg() {  # default_cfg TRAINER PROTOCOL DATASET: the config a protocol uses when none is given
    local trainer=$1 protocol=$2 dataset=$3
    if trains_nothing "${trainer}"; then
        echo vit_b16
    elif [[ ${protocol} == cross_dataset ]]; then
        echo vit_b16_ep1_cross_datasets
    elif [[ ${dataset} == imagenet ]]; then
        echo vit_b16_ep5_imnet  # base2new and few-shot on ImageNet: batch 128
    else
        echo vit_b16_ep5
    fi
}

yaml_names() {  # yaml_names FOLDER: the names of its .yaml files, on one line
    ls "$1" 2>/dev/null | sed -n 's/\.yaml$//p' | paste -sd ' '
}

config_file() {  # config_file TRAINER CFG: configs/trainers/TRAINER/CFG.yaml, or an error naming what exists
    local path="configs/trainers/$1/$2.yaml"
    if [[ ! -f ${path} ]]; then
        echo "Error: no config ${path}; available for $1: $(yaml_names "configs/trainers/$1")" >&2
        exit 1
    fi
    echo "${path}"
}

dataset_config_file() {  # dataset_config_file DATASET: configs/datasets/DATASET.yaml, or an error
    local path="configs/datasets/$1.yaml"
    if [[ ! -f ${path} ]]; then
        echo "Error: no dataset config ${path}; available: $(yaml_names configs/datasets)" >&2
        exit 1
    fi
    echo "${path}"
}

already_finished() {  # already_finished DIR: true when DIR holds its record (says it skips); else says it (re)runs
    if [[ -f ${1}/${RECORD} ]]; then
        echo "Finished, skipping: $1"
        return 0
    fi
    if [[ -d $1 ]]; then
        echo "Unfinished (no ${RECORD}), running again: $1"
    fi
    return 1
}

train_py() {  # train_py DIR DATASET SEED TRAINER CFG [TRAIN_PY_ARGS...]
    local dir=$1 dataset=$2 seed=$3 trainer=$4 cfg=$5 config dataset_config
    shift 5
    config=$(config_file "${trainer}" "${cfg}")
    dataset_config=$(dataset_config_file "${dataset}")
    "${PYTHON}" train.py --root "${DATA}" --seed "${seed}" --trainer "${trainer}" \
        --dataset-config-file "${dataset_config}" --config-file "${config}" --output-dir "${dir}" "$@"
}

run_training() {  # run_training DIR DATASET SEED TRAINER CFG [OPTS...]: train (zero-shot CLIP: evaluate) into DIR
    local dir=$1 dataset=$2 seed=$3 trainer=$4 cfg=$5
    shift 5
    already_finished "${dir}" && return 0
    if trains_nothing "${trainer}"; then
        train_py "${dir}" "${dataset}" "${seed}" "${trainer}" "${cfg}" --eval-only "$@"
    else
        train_py "${dir}" "${dataset}" "${seed}" "${trainer}" "${cfg}" "$@" "${TRAINING_OPTS[@]}"
    fi
}

run_evaluation() {  # run_evaluation DIR DATASET SEED TRAINER CFG MODEL_DIR LOAD_EPOCH [OPTS...]
    # Evaluates the finished training run MODEL_DIR at LOAD_EPOCH (empty: the config's OPTIM.MAX_EPOCH).
    local dir=$1 dataset=$2 seed=$3 trainer=$4 cfg=$5 model_dir=$6 load_epoch=$7 config
    shift 7
    already_finished "${dir}" && return 0
    if trains_nothing "${trainer}"; then
        train_py "${dir}" "${dataset}" "${seed}" "${trainer}" "${cfg}" --eval-only "$@"
        return 0
    fi
    if [[ ! -f ${model_dir}/${RECORD} ]]; then
        echo "Error: the training run ${model_dir} is not finished (no ${RECORD}); run its training script first" >&2
        exit 1
    fi
    if [[ -z ${load_epoch} ]]; then
        config=$(config_file "${trainer}" "${cfg}")
        load_epoch=$("${PYTHON}" "${SCRIPTS}/config_value.py" "${config}" OPTIM.MAX_EPOCH)
    fi
    train_py "${dir}" "${dataset}" "${seed}" "${trainer}" "${cfg}" \
        --eval-only --model-dir "${model_dir}" --load-epoch "${load_epoch}" "$@"
}
