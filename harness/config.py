"""The config tree: Dassl's defaults plus the nodes the CoOp family's train.py adds, plus each trainer's node.

A trainer declares its node's defaults once, next to its code, with `register_trainer_node`; `extend_cfg`
(called by train.py before any YAML is merged) adds every declared node, so the trainer's YAML files and
`KEY VALUE` options merge with yacs' checks (unknown key, wrong type).
"""
import copy

from yacs.config import CfgNode

# Nodes of the CoOp, MaPLe, PromptSRC and official MMA train.py files, so their YAML files merge here too.
FAMILY_TRAINER_NODES = {
    "COOP": {"N_CTX": 16, "CSC": False, "CTX_INIT": "", "PREC": "fp16", "CLASS_TOKEN_POSITION": "end"},
    "COCOOP": {"N_CTX": 16, "CTX_INIT": "", "PREC": "fp16"},
    "MAPLE": {"N_CTX": 2, "CTX_INIT": "a photo of a", "PREC": "fp16", "PROMPT_DEPTH": 9},
    "IVLP": {
        "N_CTX_VISION": 2,
        "N_CTX_TEXT": 2,
        "CTX_INIT": "a photo of a",
        "PREC": "fp16",
        "PROMPT_DEPTH_VISION": 9,
        "PROMPT_DEPTH_TEXT": 9,
    },
    "VPT": {"N_CTX_VISION": 2, "CTX_INIT": "a photo of a", "PREC": "fp16", "PROMPT_DEPTH_VISION": 1},
    "PROMPTSRC": {
        "N_CTX_VISION": 4,
        "N_CTX_TEXT": 4,
        "CTX_INIT": "a photo of a",
        "PREC": "fp16",
        "PROMPT_DEPTH_VISION": 9,
        "PROMPT_DEPTH_TEXT": 9,
        "TEXT_LOSS_WEIGHT": 25,
        "IMAGE_LOSS_WEIGHT": 10,
        "GPA_MEAN": 15,
        "GPA_STD": 1,
    },
    "MMADAPTER": {
        "TEXT_CTX_INIT": "",
        "PREC": "amp",
        "ADAPTER_START": 4,
        "ADAPTER_END": 12,
        "ADAPTER_DIM": 32,
        "ADAPTER_SCALE": 0.1,
    },
}

SUBSAMPLE_CHOICES = ("all", "base", "new")

_trainer_nodes = {}


def register_trainer_node(name, defaults):
    """Declare `TRAINER.<name>` with its defaults (a dict, nested dicts become sub-nodes)."""
    if name in _trainer_nodes or name in FAMILY_TRAINER_NODES:
        raise KeyError(f"Config node TRAINER.{name} is declared twice")
    _trainer_nodes[name] = defaults


def extend_cfg(cfg):
    """Add the harness's keys to a Dassl default config (in place)."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"
    # The shared cache of preprocessed test images: "" its default folder, a folder, or "off"; see
    # harness/data/test_image_cache.py ($HARNESS_TEST_IMAGE_CACHE overrides it).
    cfg.DATASET.TEST_IMAGE_CACHE = ""
    # Per-image predictions beside each record also hold the k best classes and their logits when k > 0; see
    # harness/results/predictions.py.
    cfg.TEST.PREDICTIONS_TOPK = 0
    # Where the backbone's weights come from; see harness/clip/backbones.py.
    cfg.MODEL.BACKBONE.WEIGHTS = ""
    for name, defaults in {**FAMILY_TRAINER_NODES, **_trainer_nodes}.items():
        setattr(cfg.TRAINER, name, CfgNode(defaults))
    return cfg


def extend_host_cfg(cfg):
    """Add to another CoOp-family checkout's config (in place) only what it lacks: the harness's keys and the
    TRAINER nodes of the trainers imported so far. Whatever the host defines stays exactly as it is: a
    TRAINER node is the host's as a whole, any other key is added only where it is missing."""
    for name, defaults in _trainer_nodes.items():
        if name in cfg.TRAINER:
            _warn_about_foreign_node(name, cfg.TRAINER[name], defaults)
        else:
            setattr(cfg.TRAINER, name, CfgNode(defaults))
    ours = extend_cfg(cfg.clone())
    del ours["TRAINER"]
    _add_missing_keys(cfg, ours)
    return cfg


def _add_missing_keys(target, source):
    for key, value in source.items():
        if key not in target:
            target[key] = copy.deepcopy(value)
        elif isinstance(value, CfgNode) and isinstance(target[key], CfgNode):
            _add_missing_keys(target[key], value)


def _warn_about_foreign_node(name, node, defaults):
    missing = sorted(set(defaults) - set(node))
    if missing:
        print(f"Warning: TRAINER.{name} comes from this checkout's extend_cfg and lacks {', '.join(missing)}; "
              f"the harness's {name} trainer needs them: rename that node or add the keys.")
