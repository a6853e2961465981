"""The engine seam: Dassl's API, from the real Dassl when it is importable, else from the bundled engine.

Trainers and datasets import every Dassl name from here, so the same code runs on both engines.
`DASSL_ENGINE=dassl` requires the real Dassl, `DASSL_ENGINE=bundled` forces the bundled engine, and
unset means the real Dassl if it imports. `ENGINE` says which one was chosen.
"""
import inspect
import os

from harness.bundled.supported import check_supported as _check_supported
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
    from dassl.engine import TRAINER_REGISTRY, TrainerBase, TrainerX, build_trainer
    from dassl.evaluation import EVALUATOR_REGISTRY, build_evaluator
    from dassl.metrics import compute_accuracy
    from dassl.optim import build_lr_scheduler as _dassl_build_lr_scheduler
    from dassl.optim import build_optimizer
    from dassl.utils import read_image, read_json, set_random_seed, setup_logger

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
    from harness.bundled.torchtools import load_checkpoint, load_pretrained_weights, save_checkpoint
    from harness.bundled.trainer import evaluate_split
else:
    from harness.bundled.config import get_cfg_default
    from harness.bundled.data_manager import DataManager, DatasetWrapper
    from harness.bundled.datasets import DATASET_REGISTRY, DatasetBase, Datum, build_dataset
    from harness.bundled.evaluator import EVALUATOR_REGISTRY, build_evaluator, compute_accuracy
    from harness.bundled.logger import setup_logger
    from harness.bundled.optim import build_lr_scheduler, build_optimizer
    from harness.bundled.tools import collect_env_info, read_image, read_json, set_random_seed
    from harness.bundled.torchtools import load_checkpoint, load_pretrained_weights, save_checkpoint
    from harness.bundled.trainer import TRAINER_REGISTRY, TrainerBase, TrainerX, build_trainer, evaluate_split
    from harness.bundled.transforms import build_transform


# The engine's API: Dassl's names (from either engine), the chosen engine, its description and its config check.
__all__ = [
    "ENGINE",
    "check_supported",
    "engine_description",
    "DATASET_REGISTRY",
    "DataManager",
    "DatasetBase",
    "DatasetWrapper",
    "Datum",
    "TRAINER_REGISTRY",
    "TrainerBase",
    "TrainerX",
    "build_dataset",
    "build_evaluator",
    "build_lr_scheduler",
    "build_optimizer",
    "build_trainer",
    "build_transform",
    "collect_env_info",
    "compute_accuracy",
    "evaluate_split",
    "get_cfg_default",
    "load_checkpoint",
    "load_pretrained_weights",
    "read_image",
    "read_json",
    "save_checkpoint",
    "set_random_seed",
    "setup_logger",
]


def check_supported(cfg):
    """Stop with one ConfigError line, before any work, if `cfg` asks for what the chosen engine cannot do.

    Run on both engines: Dassl's own checks come late (after data loading) as asserts and tracebacks, and some of
    its transforms fail on this numpy (see harness/bundled/supported.py)."""
    _check_supported(cfg, ENGINE, EVALUATOR_REGISTRY.registered_names(), get_cfg_default())


def engine_description():
    """One line for logs: which engine runs and where it was imported from."""
    if ENGINE == "dassl":
        import dassl

        return f"dassl ({os.path.dirname(dassl.__file__)})"
    return "bundled (harness.bundled)"

