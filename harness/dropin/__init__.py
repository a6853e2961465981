"""Drop-in: MMA, RMAdapter and RMMA as three more `--trainer` names inside another CoOp-family checkout (CoOp,
CoCoOp, MaPLe, PromptSRC) on its own Dassl, datasets and scripts. See docs/DROP_IN.md.

    python -m harness.dropin PATH               # copies the files (harness.dropin.install)
    from harness.dropin.host import extend_host_cfg   # the host train.py's first import (harness.dropin.host)
"""

# The methods a host gains: trainer module (trainers/<module>.py) -> registered name, which is also the folder of
# its configs (configs/trainers/<name>/). ZeroshotCLIP stays out: every CoOp-family checkout has its own.
DROP_IN_TRAINERS = {"mma": "MMA", "rmadapter": "RMAdapter", "rmma": "RMMA"}

# The two edits of the host's train.py (docs/DROP_IN.md, step 2).
IMPORT_LINE = "from harness.dropin.host import extend_host_cfg  # first: fixes torchvision, adds MMA, RMAdapter, RMMA"
EXTEND_CALL = "extend_host_cfg(cfg)"
