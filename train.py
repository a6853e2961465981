"""Train or evaluate a trainer: the CoOp family's train.py, with the same flags, merge order and log.

The engine, the trainers and torch are imported once the arguments are parsed (in `setup_cfg` and `main`), so
that `python train.py --help` and a misplaced flag answer in a moment instead of after torch's start-up.
"""
import argparse
import ast
import os
import sys
from difflib import get_close_matches

import yaml

from harness.config import SUBSAMPLE_CHOICES, extend_cfg
from harness.errors import ConfigError, UserError
from harness.protocols import trains_nothing
from harness.results.logs import set_aside_earlier_attempt
from harness.results.record import ResultRecord
from harness.run_folder import lock_output_dir

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = (
    "python train.py --root data --seed 1 --trainer MMA --dataset-config-file configs/datasets/eurosat.yaml \\\n"
    "    --config-file configs/trainers/MMA/vit_b16_ep5.yaml \\\n"
    "    --output-dir output/base2new/train_base/eurosat/shots_16/MMA/vit_b16_ep5/seed1 \\\n"
    "    DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base"
)


def trainer_names():
    """The trainers that have configs: the folders of configs/trainers/."""
    folder = os.path.join(REPO_ROOT, "configs", "trainers")
    return sorted(name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name)))


def dataset_config_names():
    folder = os.path.join(REPO_ROOT, "configs", "datasets")
    return sorted(name[: -len(".yaml")] for name in os.listdir(folder) if name.endswith(".yaml"))


def backbone_names():
    """CoOp's backbone names (COOP_BACKBONES of harness/clip/backbones.py) and the tiny one, read from the
    source so that --help needs neither torch nor open_clip."""
    with open(os.path.join(REPO_ROOT, "harness", "clip", "backbones.py")) as file:
        module = ast.parse(file.read())
    values = {target.id: node.value for node in module.body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name)}
    return [*ast.literal_eval(values["COOP_BACKBONES"]), ast.literal_eval(values["TINY"])]


def help_epilog():
    return "\n".join([
        f"trainers (--trainer): {', '.join(trainer_names())}; their configs: configs/trainers/<TRAINER>/*.yaml",
        f"datasets (--dataset-config-file configs/datasets/<name>.yaml): {', '.join(dataset_config_names())}",
        f"backbones (--backbone or MODEL.BACKBONE.NAME): {', '.join(backbone_names())}, any open_clip "
        "architecture, or an hf-hub: id",
        "KEY VALUE options come last, after every flag.",
        "",
        "example (train MMA on EuroSAT's base classes, 16 shots, seed 1):",
        f"  {EXAMPLE}",
    ])


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
        by_lowercase = {known.lower(): known for known in available}
        close = get_close_matches(name.lower(), list(by_lowercase), n=1)
        hint = f" (did you mean {by_lowercase[close[0]]}?)" if close else ""
        raise ConfigError(f"Unknown {kind} {name!r}{hint}; set it with {flag}. Available: {', '.join(available)}.")


def _check_no_flag_among_options(opts):
    misplaced = [item for item in opts if item.startswith("--")]
    if misplaced:
        raise ConfigError(f"{misplaced[0]} comes after the KEY VALUE options, where it would be read as a config "
                          "key: put every flag before the options.")


def setup_cfg(args):
    _check_no_flag_among_options(args.opts)
    from harness.engine import DATASET_REGISTRY, TRAINER_REGISTRY, get_cfg_default

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
    if args.no_train:
        return
    if trains_nothing(trainer):
        raise ConfigError(f"{trainer} trains nothing: run it with --eval-only (as the protocol scripts do).")
    if cfg.OPTIM.MAX_EPOCH < 1:
        raise ConfigError(f"OPTIM.MAX_EPOCH is {cfg.OPTIM.MAX_EPOCH}: a training run needs at least 1 epoch (to "
                          "evaluate the untrained adapter, use --eval-only --eval-untrained).")


def main(args):
    cfg = setup_cfg(args)
    import torch

    from harness.engine import build_trainer, collect_env_info, engine_description, set_random_seed, setup_logger

    check_run_kind(cfg, args)
    with lock_output_dir(cfg.OUTPUT_DIR):  # held for the whole run
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
        elif not args.no_train:
            trainer.train()
            result_record.write()


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=help_epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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


def run(argv):
    """train.py with the command-line arguments `argv`; returns its exit status (a UserError: 1, after one line)."""
    arguments = build_parser().parse_args(argv)
    try:
        from harness import engine, run_clock  # noqa: F401  (imported here so that the clock counts it)
        from harness.registration import register_all

        register_all()
        run_clock.current().mark("import")
        main(arguments)
    except UserError as error:
        sys.stdout.flush()
        # On stderr, after a blank line: it stands apart from the configuration dump and the log on stdout.
        print(f"\nError: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
