"""The benchmark's protocols, defined once: their datasets and shots, the default config per trainer and dataset,
the output folder of every run, and the chain of train.py invocations of every job.

A job is one chain: a training run, then the evaluations that load its checkpoint (zero-shot CLIP trains
nothing, so its "training" run is an evaluation too). The bash scripts, the sweep launchers
(`python -m harness.sweep`) and the result readers (`harness.results.layout`) all take their knowledge from
here. Importing this module imports neither torch nor the engine, so scripts stay fast.

Output folders (CoOp's layouts, with the ${CFG} level):

    <out>/base2new/train_base/<dataset>/shots_<K>/<TRAINER>/<CFG>/seed<S>   base2new: training, base classes
    <out>/base2new/test_new/<dataset>/shots_<K>/<TRAINER>/<CFG>/seed<S>     base2new: new classes (evaluation)
    <out>/imagenet/<TRAINER>/<CFG>_<K>shots/seed<S>                        cross_dataset_source: the ImageNet
                                                                          training run shared by cross_dataset
                                                                          and domain_generalization
    <out>/evaluation/<TRAINER>/<CFG>_<K>shots/<dataset>/seed<S>            cross_dataset (10 targets) or
                                                                          domain_generalization (4 targets)
    <out>/few_shot/<dataset>/<TRAINER>/<CFG>_<K>shots/seed<S>              few_shot, all classes
"""
import os
from dataclasses import dataclass, field

import yaml

from harness.errors import ConfigError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_ROOT = os.path.join(REPO_ROOT, "configs")

# The 11 datasets of the base-to-novel table, in the papers' column order (CoOp's config names).
BASE2NEW_DATASETS = ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                     "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101")
SOURCE_DATASET = "imagenet"
CROSS_DATASET_TARGETS = BASE2NEW_DATASETS[1:]
DOMAIN_GENERALIZATION_TARGETS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
# Shots of the base-to-novel, cross-dataset and domain-generalization protocols; the few-shot protocol's list.
PROTOCOL_SHOTS = 16
FEW_SHOT_SHOTS = (1, 2, 4, 8, 16)
DEFAULT_SEEDS = (1, 2, 3)


def parse_seeds(words):
    """Seeds as given on a command line: numbers and inclusive ranges, e.g. `1 2 3`, `1-10`, `1-3 7`, in order
    and without repeats; raises ValueError with the word it cannot read."""
    seeds = []
    for word in words:
        first, dash, last = str(word).partition("-")
        try:
            span = range(int(first), int(last) + 1) if dash else [int(first)]
        except ValueError:
            raise ValueError(f"{word!r} is not a seed or a range of seeds such as 1-10") from None
        if dash and not span:
            raise ValueError(f"{word!r} is an empty range (write the smaller seed first)")
        seeds += [seed for seed in span if seed not in seeds]
    return seeds

BASE2NEW = "base2new"
CROSS_DATASET_SOURCE = "cross_dataset_source"
CROSS_DATASET = "cross_dataset"
DOMAIN_GENERALIZATION = "domain_generalization"
FEW_SHOT = "few_shot"

# Trainers whose "training" run is an evaluation of the frozen model.
TRAINS_NOTHING = ("ZeroshotCLIP",)


def trains_nothing(trainer):
    return trainer in TRAINS_NOTHING


def default_config(trainer, protocol, dataset):
    """The config name (configs/trainers/<trainer>/<name>.yaml) a protocol uses when none is given."""
    if trains_nothing(trainer):
        return "vit_b16"
    if protocol in (CROSS_DATASET, DOMAIN_GENERALIZATION):
        return "vit_b16_ep1_cross_datasets"
    if dataset == "imagenet":
        return "vit_b16_ep5_imnet"  # base2new and few-shot on ImageNet: batch 128
    return "vit_b16_ep5"


def yaml_names(folder):
    if not os.path.isdir(folder):
        return []
    return sorted(name[:-len(".yaml")] for name in os.listdir(folder) if name.endswith(".yaml"))


def available_trainers():
    """The trainers that have configs (configs/trainers/<TRAINER>/)."""
    folder = os.path.join(CONFIG_ROOT, "trainers")
    return sorted(name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name)))


def available_datasets():
    return yaml_names(os.path.join(CONFIG_ROOT, "datasets"))


def trainer_config_file(trainer, config, config_dir=""):
    """configs/trainers/<trainer>/<config>.yaml, looked up first under `config_dir` (a user's own configs in the
    same layout, e.g. ablations kept outside the repository), then in the repository."""
    if config_dir:
        path = os.path.join(os.path.abspath(config_dir), "trainers", trainer, f"{config}.yaml")
        if os.path.isfile(path):
            return path
    path = os.path.join("configs", "trainers", trainer, f"{config}.yaml")
    if not os.path.isfile(os.path.join(REPO_ROOT, path)):
        available = yaml_names(os.path.join(CONFIG_ROOT, "trainers", trainer))
        if config_dir:
            available += yaml_names(os.path.join(config_dir, "trainers", trainer))
        if not available:
            raise ConfigError(f"Unknown trainer {trainer!r}: no folder configs/trainers/{trainer}; "
                              f"available: {', '.join(available_trainers())}.")
        raise ConfigError(f"No config {path}{' (nor under ' + config_dir + ')' if config_dir else ''}; "
                          f"available for {trainer}: {', '.join(sorted(set(available)))}.")
    return path


def dataset_config_file(dataset):
    path = os.path.join("configs", "datasets", f"{dataset}.yaml")
    if not os.path.isfile(os.path.join(REPO_ROOT, path)):
        raise ConfigError(f"No dataset config {path}; available: {', '.join(available_datasets())}.")
    return path


def max_epoch(trainer, config, config_dir=""):
    """OPTIM.MAX_EPOCH of a trainer config: the epoch whose checkpoint the evaluations load."""
    path = trainer_config_file(trainer, config, config_dir)
    with open(os.path.join(REPO_ROOT, path)) as file:
        content = yaml.safe_load(file) or {}
    value = (content.get("OPTIM") or {}).get("MAX_EPOCH")
    if not isinstance(value, int):
        raise ConfigError(f"{path} does not set OPTIM.MAX_EPOCH: set it, or pass the epoch to load (--load-epoch).")
    return value


@dataclass(frozen=True)
class Run:
    """One train.py invocation into one output folder."""

    output_dir: str
    dataset: str
    seed: int
    trainer: str
    config: str
    opts: tuple = ()
    eval_only: bool = False
    model_dir: str = ""  # the training run an evaluation loads ("" for zero-shot CLIP)
    load_epoch: int = None
    config_dir: str = ""  # where the user's own configs are looked up first (see trainer_config_file)

    def arguments(self, data_root):
        """train.py's arguments, in the order CoOp's scripts pass them."""
        arguments = ["--root", data_root, "--seed", str(self.seed), "--trainer", self.trainer,
                     "--dataset-config-file", dataset_config_file(self.dataset),
                     "--config-file", trainer_config_file(self.trainer, self.config, self.config_dir),
                     "--output-dir", self.output_dir]
        if self.eval_only:
            arguments.append("--eval-only")
        if self.model_dir:
            arguments += ["--model-dir", self.model_dir, "--load-epoch", str(self.load_epoch)]
        return arguments + list(self.opts)


@dataclass(frozen=True)
class Job:
    """A chain of runs that must run in order: a training run, then the evaluations of its checkpoint."""

    protocol: str
    trainer: str
    config: str
    seed: int
    runs: tuple = field(default_factory=tuple)

    @property
    def name(self):
        first = self.runs[0]
        return f"{self.protocol}/{first.dataset}/{self.trainer}/{self.config}/seed{self.seed}"


@dataclass(frozen=True)
class Selection:
    """What a launch or a status covers: trainers x datasets x seeds (x shots for few-shot)."""

    protocol: str
    trainers: tuple
    datasets: tuple = None  # None: the protocol's datasets
    seeds: tuple = DEFAULT_SEEDS
    shots: tuple = None  # None: FEW_SHOT_SHOTS for few_shot, PROTOCOL_SHOTS otherwise
    config: str = None  # None: default_config per trainer and dataset
    output: str = "output"
    load_epoch: int = None  # None: the config's OPTIM.MAX_EPOCH
    config_dir: str = ""  # the user's own configs/ layout, looked up before the repository's


def _training_run(selection, trainer, config, dataset, seed, output_dir, opts):
    return Run(output_dir, dataset, seed, trainer, config, tuple(opts), eval_only=trains_nothing(trainer),
               config_dir=selection.config_dir)


def _evaluation_run(selection, training, dataset, output_dir, opts):
    common = {"eval_only": True, "config_dir": selection.config_dir}
    if trains_nothing(training.trainer):
        return Run(output_dir, dataset, training.seed, training.trainer, training.config, tuple(opts), **common)
    load_epoch = selection.load_epoch or max_epoch(training.trainer, training.config, selection.config_dir)
    return Run(output_dir, dataset, training.seed, training.trainer, training.config, tuple(opts),
               model_dir=training.output_dir, load_epoch=load_epoch, **common)


def base2new_jobs(selection, trainer, seed):
    out = selection.output
    for dataset in selection.datasets or BASE2NEW_DATASETS:
        config = selection.config or default_config(trainer, BASE2NEW, dataset)
        common = os.path.join(dataset, f"shots_{PROTOCOL_SHOTS}", trainer, config, f"seed{seed}")
        shots = ("DATASET.NUM_SHOTS", str(PROTOCOL_SHOTS))
        train = _training_run(selection, trainer, config, dataset, seed,
                              os.path.join(out, BASE2NEW, "train_base", common),
                              (*shots, "DATASET.SUBSAMPLE_CLASSES", "base"))
        test = _evaluation_run(selection, train, dataset, os.path.join(out, BASE2NEW, "test_new", common),
                               (*shots, "DATASET.SUBSAMPLE_CLASSES", "new"))
        yield Job(BASE2NEW, trainer, config, seed, (train, test))


def source_run(selection, trainer, seed, protocol):
    config = selection.config or default_config(trainer, protocol, SOURCE_DATASET)
    return _training_run(selection, trainer, config, SOURCE_DATASET, seed,
                         os.path.join(selection.output, SOURCE_DATASET, trainer, f"{config}_{PROTOCOL_SHOTS}shots",
                                      f"seed{seed}"),
                         ("DATASET.NUM_SHOTS", str(PROTOCOL_SHOTS)))


def target_jobs(protocol, targets):
    def jobs(selection, trainer, seed):
        train = source_run(selection, trainer, seed, protocol)
        evaluation = os.path.join(selection.output, "evaluation", trainer, f"{train.config}_{PROTOCOL_SHOTS}shots")
        tests = tuple(_evaluation_run(selection, train, dataset, os.path.join(evaluation, dataset, f"seed{seed}"), ())
                      for dataset in selection.datasets or targets)
        yield Job(protocol, trainer, train.config, seed, (train, *tests))
    return jobs


def few_shot_jobs(selection, trainer, seed):
    for dataset in selection.datasets or BASE2NEW_DATASETS:
        config = selection.config or default_config(trainer, FEW_SHOT, dataset)
        for shots in selection.shots or FEW_SHOT_SHOTS:
            output_dir = os.path.join(selection.output, FEW_SHOT, dataset, trainer, f"{config}_{shots}shots",
                                      f"seed{seed}")
            train = _training_run(selection, trainer, config, dataset, seed, output_dir,
                                  ("DATASET.NUM_SHOTS", str(shots)))
            yield Job(FEW_SHOT, trainer, config, seed, (train,))


@dataclass(frozen=True)
class Protocol:
    name: str
    datasets: tuple  # the datasets a job trains on (base2new, few_shot) or evaluates on (targets)
    expand: callable  # (selection, trainer, seed) -> jobs
    description: str


PROTOCOLS = {
    BASE2NEW: Protocol(BASE2NEW, BASE2NEW_DATASETS, base2new_jobs,
                       "train on the base classes (16 shots), evaluate on the new classes"),
    CROSS_DATASET: Protocol(CROSS_DATASET, CROSS_DATASET_TARGETS, target_jobs(CROSS_DATASET, CROSS_DATASET_TARGETS),
                            "train on ImageNet (16 shots), evaluate on the 10 other datasets"),
    DOMAIN_GENERALIZATION: Protocol(DOMAIN_GENERALIZATION, DOMAIN_GENERALIZATION_TARGETS,
                                    target_jobs(DOMAIN_GENERALIZATION, DOMAIN_GENERALIZATION_TARGETS),
                                    "train on ImageNet (16 shots), evaluate on ImageNet-V2/-Sketch/-A/-R"),
    FEW_SHOT: Protocol(FEW_SHOT, BASE2NEW_DATASETS, few_shot_jobs,
                       "train and evaluate on all classes with 1, 2, 4, 8, 16 shots"),
}


def get_protocol(name):
    if name not in PROTOCOLS:
        raise ConfigError(f"Unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}.")
    return PROTOCOLS[name]


def target_protocol(dataset):
    """The protocol whose evaluations include `dataset` as a target (cross-dataset or domain generalization)."""
    for name in (CROSS_DATASET, DOMAIN_GENERALIZATION):
        if dataset in PROTOCOLS[name].datasets:
            return name
    raise ConfigError(f"{dataset!r} is not a cross-dataset or domain-generalization target; targets: "
                      f"{', '.join(CROSS_DATASET_TARGETS + DOMAIN_GENERALIZATION_TARGETS)}.")


def closest_hint(name, candidates):
    """' (did you mean X?)' for the closest candidate, case-insensitively ('mma' -> 'MMA'), or ''."""
    from difflib import get_close_matches

    lowered = {candidate.lower(): candidate for candidate in candidates}
    close = get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return f" (did you mean {lowered[close[0]]}?)" if close else ""


def expand(selection):
    """Every job of a selection, in a stable order (trainer, seed, then the protocol's own order)."""
    protocol = get_protocol(selection.protocol)
    trainers = available_trainers()
    for trainer in selection.trainers:
        if trainer not in trainers:
            raise ConfigError(f"Unknown trainer {trainer!r}{closest_hint(trainer, trainers)}; "
                              f"available: {', '.join(trainers)}.")
    jobs = [job for trainer in selection.trainers for seed in selection.seeds
            for job in protocol.expand(selection, trainer, seed)]
    for job in jobs:
        for run in job.runs:
            dataset_config_file(run.dataset)
            trainer_config_file(run.trainer, run.config, run.config_dir)
    return jobs


def main(argv):
    """`python -m harness.protocols target-protocol DATASET`: for the scripts, which protocol evaluates DATASET."""
    import sys

    if len(argv) != 2 or argv[0] != "target-protocol":
        sys.exit("Usage: python -m harness.protocols target-protocol DATASET")
    try:
        print(target_protocol(argv[1]))
    except ConfigError as error:
        sys.exit(f"Error: {error}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
