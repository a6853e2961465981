# Sourced by the protocol scripts (never run on its own): their shared settings. What a protocol is (its datasets,
# the output folders, the chain of train.py runs, which config a trainer uses) is defined once, in
# harness/protocols.py; each script hands its arguments to the serial launcher of `python -m harness.sweep`, which
# runs them in one warm process, skips every finished run (its metrics.json exists), resumes an unfinished training run from its last checkpoint
# and runs an unfinished evaluation again.
#
# Environment: DATA (dataset root, default data/), OUTPUT (root of the output layouts, default output),
# PYTHON (default python), SEEDS (seeds of the loops, default "1 2 3"),
# DATASETS (datasets of the loops, default the protocol's), SHOTS_LIST (few-shot loop, default "1 2 4 8 16"),
# ISOLATE (set: each run in a `python train.py` process of its own, not all in one warm worker).

DATA=${DATA:-data/}
OUTPUT=${OUTPUT:-output}
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-1 2 3}
DEFAULT_TRAINER=RMAdapter
export PYTHON

if [[ ! -f train.py ]]; then
    echo "Run the scripts from the repository root (bash scripts/$(basename "$0") ...)" >&2
    exit 2
fi

usage() {  # usage "ARGUMENTS": the one-line usage message, then exit
    echo "Usage: bash scripts/$(basename "$0") $1" >&2
    exit 2
}

sweep() {  # sweep ARGS...: run the selection one run after another, with train.py's output as CoOp's scripts show it
    "${PYTHON}" -m harness.sweep launch --launcher serial --verbose --root "${DATA}" --output "${OUTPUT}" \
        ${ISOLATE:+--isolate} "$@"
}
