"""Dassl's default config tree (every key and default of dassl/config/defaults.py), as yacs nodes."""
from yacs.config import CfgNode

_DEFAULTS = {
    "VERSION": 1,
    "OUTPUT_DIR": "./output",
    "RESUME": "",
    "SEED": -1,
    "USE_CUDA": True,
    "VERBOSE": True,
    "INPUT": {
        "SIZE": (224, 224),
        "INTERPOLATION": "bilinear",
        "TRANSFORMS": (),
        "NO_TRANSFORM": False,
        "PIXEL_MEAN": [0.485, 0.456, 0.406],
        "PIXEL_STD": [0.229, 0.224, 0.225],
        "CROP_PADDING": 4,
        "RRCROP_SCALE": (0.08, 1.0),
        "CUTOUT_N": 1,
        "CUTOUT_LEN": 16,
        "GN_MEAN": 0.0,
        "GN_STD": 0.15,
        "RANDAUGMENT_N": 2,
        "RANDAUGMENT_M": 10,
        "COLORJITTER_B": 0.4,
        "COLORJITTER_C": 0.4,
        "COLORJITTER_S": 0.4,
        "COLORJITTER_H": 0.1,
        "RGS_P": 0.2,
        "GB_P": 0.5,
        "GB_K": 21,
    },
    "DATASET": {
        "ROOT": "",
        "NAME": "",
        "SOURCE_DOMAINS": (),
        "TARGET_DOMAINS": (),
        "NUM_LABELED": -1,
        "NUM_SHOTS": -1,
        "VAL_PERCENT": 0.1,
        "STL10_FOLD": -1,
        "CIFAR_C_TYPE": "",
        "CIFAR_C_LEVEL": 1,
        "ALL_AS_UNLABELED": False,
    },
    "DATALOADER": {
        "NUM_WORKERS": 4,
        "K_TRANSFORMS": 1,
        "RETURN_IMG0": False,
        "TRAIN_X": {"SAMPLER": "RandomSampler", "BATCH_SIZE": 32, "N_DOMAIN": 0, "N_INS": 16},
        "TRAIN_U": {"SAME_AS_X": True, "SAMPLER": "RandomSampler", "BATCH_SIZE": 32, "N_DOMAIN": 0, "N_INS": 16},
        "TEST": {"SAMPLER": "SequentialSampler", "BATCH_SIZE": 32},
    },
    "MODEL": {
        "INIT_WEIGHTS": "",
        "BACKBONE": {"NAME": "", "PRETRAINED": True},
        "HEAD": {"NAME": "", "HIDDEN_LAYERS": (), "ACTIVATION": "relu", "BN": True, "DROPOUT": 0.0},
    },
    "OPTIM": {
        "NAME": "adam",
        "LR": 0.0003,
        "WEIGHT_DECAY": 5e-4,
        "MOMENTUM": 0.9,
        "SGD_DAMPNING": 0,
        "SGD_NESTEROV": False,
        "RMSPROP_ALPHA": 0.99,
        "ADAM_BETA1": 0.9,
        "ADAM_BETA2": 0.999,
        "STAGED_LR": False,
        "NEW_LAYERS": (),
        "BASE_LR_MULT": 0.1,
        "LR_SCHEDULER": "single_step",
        "STEPSIZE": (-1,),
        "GAMMA": 0.1,
        "MAX_EPOCH": 10,
        "WARMUP_EPOCH": -1,
        "WARMUP_TYPE": "linear",
        "WARMUP_CONS_LR": 1e-5,
        "WARMUP_MIN_LR": 1e-5,
        "WARMUP_RECOUNT": True,
    },
    "TRAIN": {"CHECKPOINT_FREQ": 0, "PRINT_FREQ": 10, "COUNT_ITER": "train_x"},
    "TEST": {
        "EVALUATOR": "Classification",
        "PER_CLASS_RESULT": False,
        "COMPUTE_CMAT": False,
        "NO_TEST": False,
        "SPLIT": "test",
        "FINAL_MODEL": "last_step",
    },
    # Dassl's own trainers' nodes: unused here, kept so that configs and printed trees match Dassl's.
    "TRAINER": {
        "NAME": "",
        "MCD": {"N_STEP_F": 4},
        "MME": {"LMDA": 0.1},
        "CDAC": {
            "CLASS_LR_MULTI": 10,
            "RAMPUP_COEF": 30,
            "RAMPUP_ITRS": 1000,
            "TOPK_MATCH": 5,
            "P_THRESH": 0.95,
            "STRONG_TRANSFORMS": (),
        },
        "SE": {"EMA_ALPHA": 0.999, "CONF_THRE": 0.95, "RAMPUP": 300},
        "M3SDA": {"LMDA": 0.5, "N_STEP_F": 4},
        "DAEL": {"WEIGHT_U": 0.5, "CONF_THRE": 0.95, "STRONG_TRANSFORMS": ()},
        "CROSSGRAD": {"EPS_F": 1.0, "EPS_D": 1.0, "ALPHA_F": 0.5, "ALPHA_D": 0.5},
        "DDAIG": {
            "G_ARCH": "",
            "LMDA": 0.3,
            "CLAMP": False,
            "CLAMP_MIN": -1.0,
            "CLAMP_MAX": 1.0,
            "WARMUP": 0,
            "ALPHA": 0.5,
        },
        "DAELDG": {"WEIGHT_U": 0.5, "CONF_THRE": 0.95, "STRONG_TRANSFORMS": ()},
        "DOMAINMIX": {"TYPE": "crossdomain", "ALPHA": 1.0, "BETA": 1.0},
        "ENTMIN": {"LMDA": 1e-3},
        "MEANTEACHER": {"WEIGHT_U": 1.0, "EMA_ALPHA": 0.999, "RAMPUP": 5},
        "MIXMATCH": {"WEIGHT_U": 100.0, "TEMP": 2.0, "MIXUP_BETA": 0.75, "RAMPUP": 20000},
        "FIXMATCH": {"WEIGHT_U": 1.0, "CONF_THRE": 0.95, "STRONG_TRANSFORMS": ()},
    },
}


def config_node(tree):
    """A yacs node built from a nested dict (insertion order kept, as yacs prints it)."""
    node = CfgNode()
    for key, value in tree.items():
        setattr(node, key, config_node(value) if isinstance(value, dict) else value)
    return node


_C = config_node(_DEFAULTS)


def get_cfg_default():
    return _C.clone()
