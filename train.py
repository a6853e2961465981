"""Train or evaluate a trainer: the CoOp family's train.py, with the same flags, merge order and log."""
import argparse
import sys

import torch
import yaml

from harness.config import SUBSAMPLE_CHOICES, extend_cfg
from harness.errors import ConfigError, EngineUnavailable, UserError
from harness.protocols import trains_nothing
from harness.results.logs import set_aside_earlier_attempt
from harness.run_folder import lock_output_dir

try:
    from harness.engine import (
        DATASET_REGISTRY,
        TRAINER_REGISTRY,
        build_trainer,
        collect_env_info,
        engine_description,
        get_cfg_default,
        set_random_seed,
        setup_logger,
    )
except EngineUnavailable as error:
    sys.exit(f"Error: {error}")
from harness.registration import register_all  # noqa: E402
from harness.results.record import ResultRecord  # noqa: E402


def print_args(args, cfg):
    print("***************")
    print("** Arguments **")
    print("***************")
    for key in sorted(args.__dict__):
        print(f"{key}: {args.__dict__[key]}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg)


def reset_cfg(cfg, args):
    """CLI flags override the YAML files; unlike CoOp, `--seed 0` is a real seed."""
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed >= 0:
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head


CONFIG_SUFFIXES = (".yaml", ".yml")


def _merge_file(cfg, path, flag):
    # yacs would execute a .py config as Python: only YAML is read.
    if not path.endswith(CONFIG_SUFFIXES):
        raise ConfigError(f"{flag} {path}: not a YAML file; configs are YAML only ({', '.join(CONFIG_SUFFIXES)}).")
    try:
        cfg.merge_from_file(path)
    except FileNotFoundError:
        raise ConfigError(f"{flag} {path}: no such file.") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{flag} {path}: malformed YAML{where}: {problem}.") from None
    except (KeyError, ValueError, AssertionError) as error:
        raise ConfigError(f"{flag} {path}: {_yacs_message(error)}") from None


def _yacs_message(error):
    message = error.args[0] if error.args else str(error)
    return f"{message} (see the defaults printed by train.py, or harness/config.py for TRAINER.* keys)"


def _check_registered(kind, name, registry, flag):
    available = registry.registered_names()
    if name not in available:
        from difflib import get_close_matches

        close = get_close_matches(name, available, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"Unknown {kind} {name!r}{hint}; set it with {flag}. Available: {', '.join(available)}.")


def setup_cfg(args):
    cfg = extend_cfg(get_cfg_default())
    if args.dataset_config_file:
        _merge_file(cfg, args.dataset_config_file, "--dataset-config-file")
    if args.config_file:
        _merge_file(cfg, args.config_file, "--config-file")
    reset_cfg(cfg, args)
    try:
        cfg.merge_from_list(args.opts)
    except (KeyError, ValueError, AssertionError) as error:
        raise ConfigError(f"Command-line options {args.opts}: {_yacs_message(error)}") from None
    cfg.freeze()

    _check_registered("trainer", cfg.TRAINER.NAME, TRAINER_REGISTRY, "--trainer")
    _check_registered("dataset", cfg.DATASET.NAME, DATASET_REGISTRY, "DATASET.NAME in --dataset-config-file")
    if cfg.DATASET.SUBSAMPLE_CLASSES not in SUBSAMPLE_CHOICES:
        raise ConfigError(f"DATASET.SUBSAMPLE_CLASSES is {cfg.DATASET.SUBSAMPLE_CLASSES!r}; "
                          f"choose one of {', '.join(SUBSAMPLE_CHOICES)}.")
    return cfg


def check_run_kind(cfg, args):
    """Refuse, before any work, the runs that would record something other than what was asked for."""
    trainer = cfg.TRAINER.NAME
    if args.eval_only:
        if not args.model_dir and not args.eval_untrained and not trains_nothing(trainer):
            raise ConfigError(f"--eval-only without --model-dir would evaluate an untrained {trainer} adapter: pass "
                              "--model-dir <training run> (and --load-epoch), or --eval-untrained if that is meant.")
        return
    if trains_nothing(trainer):
        raise ConfigError(f"{trainer} trains nothing: run it with --eval-only (as the protocol scripts do).")
    if not args.no_train and cfg.OPTIM.MAX_EPOCH < 1:
        raise ConfigError(f"OPTIM.MAX_EPOCH is {cfg.OPTIM.MAX_EPOCH}: a training run needs at least 1 epoch (to "
                          "evaluate the untrained adapter, use --eval-only --eval-untrained).")


def main(args):
    cfg = setup_cfg(args)
    check_run_kind(cfg, args)
    _lock = lock_output_dir(cfg.OUTPUT_DIR)  # held while this function runs, i.e. for the whole run
    set_aside_earlier_attempt(cfg.OUTPUT_DIR)
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    setup_logger(cfg.OUTPUT_DIR)
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    print_args(args, cfg)
    print("Collecting env info ...")
    print(f"** System info **\n{collect_env_info()}\n")
    print(f"Engine: {engine_description()}")

    trainer = build_trainer(cfg)
    result_record = ResultRecord(trainer, args)
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        result_record.write()
        return
    if not args.no_train:
        trainer.train()
        result_record.write()


def build_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=str, default="", help="path to dataset")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory (from which the training resumes)")
    parser.add_argument("--seed", type=int, default=-1, help="a seed >= 0 fixes the random seed (0 included)")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to config file for dataset setup")
    parser.add_argument("--trainer", type=str, default="", help="name of trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of CNN backbone")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    parser.add_argument("--load-epoch", type=int, help="load model weights at this epoch for evaluation")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument("--eval-untrained", action="store_true",
                        help="with --eval-only and no --model-dir: evaluate the untrained adapter on purpose")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options using the command-line")
    return parser


if __name__ == "__main__":
    register_all()
    try:
        main(build_parser().parse_args())
    except UserError as error:
        sys.stdout.flush()
        # On stderr, after a blank line: it stands apart from the configuration dump and the log on stdout.
        print(f"\nError: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
