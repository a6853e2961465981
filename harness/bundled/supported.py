"""What a config may ask of each engine, checked before any work starts.

A value an engine cannot honour stops with one ConfigError line naming the key, the value and what is supported,
instead of an assert or a traceback from deep inside data loading or model building. The lists are Dassl's
(its optimizers, schedulers, samplers, transforms and evaluators), minus what the bundled engine does not carry
and minus what Dassl itself cannot run on today's numpy.
"""
from harness.errors import ConfigError

TRANSFORMS = (
    "random_flip",
    "random_resized_crop",
    "normalize",
    "instance_norm",
    "random_crop",
    "random_translation",
    "center_crop",
    "cutout",
    "gaussian_noise",
    "colorjitter",
    "randomgrayscale",
    "gaussian_blur",
)
# Dassl's AutoAugment policies and its `randaugment` build their operations with np.int, which numpy 1.24 removed:
# they fail on Dassl on this stack, and the bundled engine does not carry them either.
TRANSFORMS_BROKEN_ON_DASSL = ("imagenet_policy", "cifar10_policy", "svhn_policy", "randaugment")
# Dassl's other RandAugment variants work on Dassl; the bundled engine does not carry them.
TRANSFORMS_ONLY_ON_DASSL = ("randaugment_fixmatch", "randaugment2")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")

SAMPLERS = ("RandomSampler", "SequentialSampler")
SAMPLERS_ONLY_ON_DASSL = ("RandomDomainSampler", "SeqDomainSampler", "RandomClassSampler")

OPTIMIZERS = ("adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw")
LR_SCHEDULERS = ("single_step", "multi_step", "cosine")
WARMUP_TYPES = ("constant", "linear")

ONLY_ON_DASSL = "only the real Dassl provides it: install Dassl from https://github.com/KaiyangZhou/Dassl.pytorch"


def refuse(key, value, supported, why=""):
    reason = f" ({why})" if why else ""
    raise ConfigError(f"{key} = {value!r} is not supported{reason}; supported: {', '.join(supported)}.")


def check_transform_choices(choices, engine):
    supported = TRANSFORMS + (TRANSFORMS_ONLY_ON_DASSL if engine == "dassl" else ())
    for choice in choices:
        if choice in TRANSFORMS_BROKEN_ON_DASSL:
            refuse("INPUT.TRANSFORMS", choice, supported, "Dassl's AutoAugment and RandAugment policies use np.int, "
                   "which numpy 1.24 removed, so they fail on Dassl too; the bundled engine does not carry them")
        if choice in TRANSFORMS_ONLY_ON_DASSL and engine == "bundled":
            refuse("INPUT.TRANSFORMS", choice, supported, ONLY_ON_DASSL)
        if choice not in supported:
            refuse("INPUT.TRANSFORMS", choice, supported)


def check_images_are_transformed(input_cfg):
    if input_cfg.NO_TRANSFORM:
        raise ConfigError("INPUT.NO_TRANSFORM = True is not supported: the loaders would batch untransformed PIL "
                          "images, which fails on Dassl too; remove it (INPUT.TRANSFORMS chooses the transforms).")


def check_interpolation(name):
    if name not in INTERPOLATIONS:
        refuse("INPUT.INTERPOLATION", name, INTERPOLATIONS)


def check_sampler(key, name, engine):
    supported = SAMPLERS + (SAMPLERS_ONLY_ON_DASSL if engine == "dassl" else ())
    if name in SAMPLERS_ONLY_ON_DASSL and engine == "bundled":
        refuse(key, name, supported, ONLY_ON_DASSL)
    if name not in supported:
        refuse(key, name, supported)


def check_optim(optim_cfg):
    if optim_cfg.NAME not in OPTIMIZERS:
        refuse("OPTIM.NAME", optim_cfg.NAME, OPTIMIZERS)
    name, stepsize = optim_cfg.LR_SCHEDULER, optim_cfg.STEPSIZE
    if name not in LR_SCHEDULERS:
        refuse("OPTIM.LR_SCHEDULER", name, LR_SCHEDULERS)
    # yacs keeps OPTIM.STEPSIZE a tuple (what multi_step needs); single_step uses its last entry, as Dassl does.
    if name == "single_step" and not (stepsize and isinstance(stepsize[-1], int)):
        raise ConfigError(f"OPTIM.STEPSIZE = {stepsize!r}: OPTIM.LR_SCHEDULER single_step needs one integer "
                          "(<= 0 means OPTIM.MAX_EPOCH).")
    if optim_cfg.WARMUP_EPOCH > 0 and optim_cfg.WARMUP_TYPE not in WARMUP_TYPES:
        refuse("OPTIM.WARMUP_TYPE", optim_cfg.WARMUP_TYPE, WARMUP_TYPES)


def check_no_unlabeled_loader(cfg, defaults):
    """The bundled engine builds no loader of unlabelled data (TrainerX, which every CoOp-family trainer extends,
    trains on DATALOADER.TRAIN_X only), so a DATALOADER.TRAIN_U setting would silently do nothing."""
    for key, default in defaults.DATALOADER.TRAIN_U.items():
        value = cfg.DATALOADER.TRAIN_U[key]
        if value != default:
            raise ConfigError(f"DATALOADER.TRAIN_U.{key} = {value!r} is not supported: the bundled engine builds no "
                              "loader of unlabelled data (TrainerX trains on DATALOADER.TRAIN_X); remove the key.")


def check_supported(cfg, engine, evaluators, defaults):
    """Every check above, for `engine` ("dassl" or "bundled"), with its evaluator names and its default config."""
    check_images_are_transformed(cfg.INPUT)
    check_transform_choices(cfg.INPUT.TRANSFORMS, engine)
    check_interpolation(cfg.INPUT.INTERPOLATION)
    check_sampler("DATALOADER.TRAIN_X.SAMPLER", cfg.DATALOADER.TRAIN_X.SAMPLER, engine)
    check_sampler("DATALOADER.TEST.SAMPLER", cfg.DATALOADER.TEST.SAMPLER, engine)
    check_optim(cfg.OPTIM)
    if cfg.TEST.EVALUATOR not in evaluators:
        refuse("TEST.EVALUATOR", cfg.TEST.EVALUATOR, evaluators)
    if engine == "bundled":
        check_no_unlabeled_loader(cfg, defaults)
