"""The engine seam: Dassl's API, from the real Dassl when it is importable, else from the bundled engine.

Trainers and datasets import every Dassl name from here, so the same code runs on both engines.
`DASSL_ENGINE=dassl` requires the real Dassl, `DASSL_ENGINE=bundled` forces the bundled engine, and
unset means the real Dassl if it imports. `ENGINE` says which one was chosen.
"""
import inspect
import os

from harness.errors import EngineUnavailable
from harness.torchvision_fix import ensure_torchvision_importable

# Both engines import torchvision (Dassl, and the bundled engine's transforms).
ensure_torchvision_importable()

ENGINE_VARIABLE = "DASSL_ENGINE"


def _choose_engine():
    requested = os.environ.get(ENGINE_VARIABLE, "").strip().lower()
    if requested not in ("", "dassl", "bundled"):
        raise EngineUnavailable(f"{ENGINE_VARIABLE}={requested!r} is not one of: dassl, bundled (or leave it unset).")
    if requested == "bundled":
        return "bundled"
    try:
        import dassl.data
        import dassl.engine  # noqa: F401  (imported to learn whether Dassl works, not only whether it is there)
    except ImportError as error:
        if requested == "dassl":
            raise EngineUnavailable(
                f"{ENGINE_VARIABLE}=dassl but Dassl cannot be imported ({error}). Install it from a clone of "
                "https://github.com/KaiyangZhou/Dassl.pytorch (pip install -r requirements.txt && "
                f"pip install -e .), or unset {ENGINE_VARIABLE} to use the bundled engine."
            ) from None
        return "bundled"
    return "dassl"


ENGINE = _choose_engine()

if ENGINE == "dassl":
    import torch.optim.lr_scheduler as _torch_schedulers
    from dassl.config import get_cfg_default
    from dassl.data import DataManager, DatasetWrapper
    from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum, build_dataset
    from dassl.data.transforms import build_transform
    from dassl.engine import TRAINER_REGISTRY, SimpleTrainer, TrainerBase, TrainerX, build_trainer
    from dassl.evaluation import EVALUATOR_REGISTRY, build_evaluator
    from dassl.metrics import compute_accuracy
    from dassl.optim import build_lr_scheduler as _dassl_build_lr_scheduler
    from dassl.optim import build_optimizer
    from dassl.utils import (
        AverageMeter,
        MetricMeter,
        Registry,
        check_availability,
        check_isfile,
        count_num_param,
        listdir_nohidden,
        mkdir_if_missing,
        read_image,
        read_json,
        set_random_seed,
        setup_logger,
        tolist_if_not,
        write_json,
    )

    if "verbose" in inspect.signature(_torch_schedulers.LRScheduler.__init__).parameters:
        build_lr_scheduler = _dassl_build_lr_scheduler
    else:
        # Dassl's warmup schedulers pass `verbose`, which this torch no longer accepts: use the bundled
        # implementation of the same schedules (it also keeps checkpoints free of pickled objects).
        from harness.bundled.optim import build_lr_scheduler
    # Replaced on Dassl too: Dassl's load_checkpoint retries a failed load with a plain pickle and saves in place
    # (every checkpoint read and write goes through the bundled weights-only reads and atomic writes); its
    # collect_env_info lists every installed package through subprocesses (seconds of start-up); and the test loop
    # is shared so that harness trainers hand its result on (see SimpleTrainer.test).
    from harness.bundled.tools import collect_env_info
    from harness.bundled.torchtools import (
        load_checkpoint,
        load_pretrained_weights,
        resume_from_checkpoint,
        save_checkpoint,
    )
    from harness.bundled.trainer import evaluate_split
else:
    from harness.bundled.config import get_cfg_default
    from harness.bundled.data_manager import DataManager, DatasetWrapper
    from harness.bundled.datasets import DATASET_REGISTRY, DatasetBase, Datum, build_dataset
    from harness.bundled.evaluator import EVALUATOR_REGISTRY, build_evaluator, compute_accuracy
    from harness.bundled.logger import setup_logger
    from harness.bundled.meters import AverageMeter, MetricMeter
    from harness.bundled.optim import build_lr_scheduler, build_optimizer
    from harness.bundled.registry import Registry, check_availability
    from harness.bundled.tools import (
        check_isfile,
        collect_env_info,
        listdir_nohidden,
        mkdir_if_missing,
        read_image,
        read_json,
        set_random_seed,
        tolist_if_not,
        write_json,
    )
    from harness.bundled.torchtools import (
        count_num_param,
        load_checkpoint,
        load_pretrained_weights,
        resume_from_checkpoint,
        save_checkpoint,
    )
    from harness.bundled.trainer import (
        TRAINER_REGISTRY,
        SimpleTrainer,
        TrainerBase,
        TrainerX,
        build_trainer,
        evaluate_split,
    )
    from harness.bundled.transforms import build_transform


# The engine's API: Dassl's names (from either engine), the chosen engine and its description.
__all__ = [
    "ENGINE",
    "engine_description",
    "AverageMeter",
    "DATASET_REGISTRY",
    "DataManager",
    "DatasetBase",
    "DatasetWrapper",
    "Datum",
    "EVALUATOR_REGISTRY",
    "MetricMeter",
    "Registry",
    "SimpleTrainer",
    "TRAINER_REGISTRY",
    "TrainerBase",
    "TrainerX",
    "build_dataset",
    "build_evaluator",
    "build_lr_scheduler",
    "build_optimizer",
    "build_trainer",
    "build_transform",
    "check_availability",
    "check_isfile",
    "collect_env_info",
    "compute_accuracy",
    "count_num_param",
    "evaluate_split",
    "get_cfg_default",
    "listdir_nohidden",
    "load_checkpoint",
    "load_pretrained_weights",
    "mkdir_if_missing",
    "read_image",
    "read_json",
    "resume_from_checkpoint",
    "save_checkpoint",
    "set_random_seed",
    "setup_logger",
    "tolist_if_not",
    "write_json",
]


def engine_description():
    """One line for logs: which engine runs and where it was imported from."""
    if ENGINE == "dassl":
        import dassl

        return f"dassl ({os.path.dirname(dassl.__file__)})"
    return "bundled (harness.bundled)"

