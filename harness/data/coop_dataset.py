"""The CoOp dataset pipeline, written once: split entries -> Datums -> few-shot draw (cached) -> base/new classes.

A dataset file subclasses `CoOpDataset`, registers it, and declares its layout as data (folders, split file,
class count, zero-shot template, download steps). It overrides `build_raw_splits` where CoOp can rebuild a
missing split file from the raw annotations, and `read_entries` where the dataset has no split file.
"""
import os
import warnings
from collections import Counter

from harness.data.base_new import subsample_classes
from harness.data.errors import DatasetError
from harness.data.few_shot import draw_few_shot, few_shot_cache_path
from harness.data.image_probe import image_problem
from harness.data.split_entries import missing_images, read_split_file, to_datums, write_split_file
from harness.engine import DATASET_REGISTRY, DatasetBase

DEFAULT_ZEROSHOT_TEMPLATE = "a photo of a {}."


def data_root(cfg):
    return os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))


def zeroshot_template(dataset_name):
    """CoOp's zero-shot prompt template (CUSTOM_TEMPLATES) for a registered dataset name."""
    return getattr(DATASET_REGISTRY.get(dataset_name), "zeroshot_template", DEFAULT_ZEROSHOT_TEMPLATE)


class CoOpDataset(DatasetBase):
    dataset_dir = ""  # folder under DATASET.ROOT
    image_dir = ""  # folder under dataset_dir that split-file paths are relative to ("" = dataset_dir)
    split_file = ""  # CoOp's split_zhou_<Name>.json under dataset_dir
    config_name = ""  # configs/datasets/<config_name>.yaml; the name `prepare` and `check` take
    class_count = 0  # classes of the full dataset
    zeroshot_template = DEFAULT_ZEROSHOT_TEMPLATE
    classname_renames = {}  # raw class name -> CoOp's class name, where CoOp renames
    known_classnames = ()  # the exact class names, where the dataset fixes them (`check` compares)
    test_only = False  # ImageNet variants: one test set, no few-shot, no base/new
    generated_on_first_use = False  # Demo: `ensure_split_file` creates the whole dataset
    downloads = ()  # harness.data.download_steps steps that `prepare` runs in order
    manual_steps = ""  # what `prepare` tells the user to do by hand

    def __init__(self, cfg):
        root = data_root(cfg)
        self.dataset_dir = os.path.join(root, type(self).dataset_dir)
        self.ensure_split_file(self.dataset_dir)
        entries = self.read_entries(self.dataset_dir)
        self.require_consistent_labels(entries)
        self.require_images_exist(entries, root)
        datums = {split: to_datums(items) for split, items in entries.items()}
        if self.test_only:
            data = datums["test"]
            self.require_images_readable(data, entries, root)
            super().__init__(train_x=data, test=data)
            return
        train, val, test = datums["train"], datums.get("val"), datums["test"]
        num_shots = cfg.DATASET.NUM_SHOTS
        cache_path = few_shot_cache_path(self.dataset_dir, num_shots, cfg.SEED)
        train, val = draw_few_shot(self, train, val, num_shots, cache_path, root)
        subsample = cfg.DATASET.SUBSAMPLE_CLASSES
        if val is None:  # ImageNet: its val folder is the test set and serves as val too
            train, test = subsample_classes(train, test, subsample=subsample)
            val = test
        else:
            train, val, test = subsample_classes(train, val, test, subsample=subsample)
        self.require_images_in(train, "train", subsample, root)
        self.require_images_in(test, "test", subsample, root)
        self.shots_per_class = dict(sorted(Counter(item.label for item in train).items())) if num_shots >= 1 else None
        # A full training split (no shots drawn) is left to `check`: ImageNet's million headers take a minute.
        self.require_images_readable((train if num_shots >= 1 else []) + val + test, entries, root)
        super().__init__(train_x=train, val=val, test=test)

    # Layout: overridden by dataset files.

    @classmethod
    def read_entries(cls, dataset_dir):
        """{split name: [SplitEntry]} of the full dataset, without drawing shots or choosing classes."""
        cls.require_folder(dataset_dir)
        split_path = os.path.join(dataset_dir, cls.split_file)
        if not os.path.isfile(split_path):
            raise cls.missing_split_error(dataset_dir)
        fix = f"delete it and run {cls.prepare_command(os.path.dirname(dataset_dir))}"
        return read_split_file(split_path, os.path.join(dataset_dir, cls.image_dir), fix=fix)

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        """{split name: [SplitEntry]} rebuilt from the raw annotations, where CoOp can."""
        raise cls.missing_split_error(dataset_dir)

    # Shared steps.

    @classmethod
    def ensure_split_file(cls, dataset_dir):
        """Rebuild a missing split file from the raw annotations, as CoOp does (it uses the random state)."""
        split_path = os.path.join(dataset_dir, cls.split_file)
        if not cls.split_file or os.path.isfile(split_path):
            return
        cls.require_folder(dataset_dir)
        write_split_file(cls.build_raw_splits(dataset_dir), split_path, os.path.join(dataset_dir, cls.image_dir))
        warnings.warn(
            f"{cls.__name__}: {split_path} was missing and was rebuilt from the raw annotations; it is not CoOp's "
            f"official split, so results are not comparable. For the official one delete it and run "
            f"{cls.prepare_command(os.path.dirname(dataset_dir))}",
            stacklevel=2,
        )

    @classmethod
    def prepare_command(cls, root):
        return f"python -m datasets.prepare {cls.config_name} --root {root}"

    @classmethod
    def check_command(cls, root):
        return f"python -m datasets.check --root {root} {cls.config_name}"

    @classmethod
    def bad_image_fix(cls, root):
        """How to replace damaged image files (`prepare` skips an image folder that exists, so it goes first)."""
        dataset_dir = os.path.join(root, cls.dataset_dir)
        if cls.generated_on_first_use:
            return f"delete {dataset_dir}; it is generated again on first use"
        images = os.path.join(dataset_dir, cls.image_dir) if cls.image_dir else dataset_dir
        return f"re-extract the images: delete {images} and run {cls.prepare_command(root)}"

    @classmethod
    def require_folder(cls, dataset_dir):
        if not os.path.isdir(dataset_dir):
            raise DatasetError(
                f"{cls.__name__}: dataset folder {dataset_dir} not found; fix: "
                f"{cls.prepare_command(os.path.dirname(dataset_dir))}"
            )

    @classmethod
    def require_file(cls, path, dataset_dir):
        if not os.path.isfile(path):
            raise DatasetError(
                f"{cls.__name__}: {path} not found; fix: {cls.prepare_command(os.path.dirname(dataset_dir))}"
            )

    @classmethod
    def missing_split_error(cls, dataset_dir):
        split_path = os.path.join(dataset_dir, cls.split_file)
        return DatasetError(
            f"{cls.__name__}: split file {split_path} is missing; fix: "
            f"{cls.prepare_command(os.path.dirname(dataset_dir))}"
        )

    @classmethod
    def label_problems(cls, entries):
        """Descriptions of labels out of range or shared between class names, across all splits."""
        problems = []
        name_of_label, label_of_name = {}, {}
        for items in entries.values():
            for item in items:
                if cls.class_count and item.label >= cls.class_count:
                    problems.append(f"label {item.label} is out of range 0..{cls.class_count - 1} at {item.origin}")
                known_name = name_of_label.setdefault(item.label, item.classname)
                known_label = label_of_name.setdefault(item.classname, item.label)
                if known_name != item.classname:
                    problems.append(
                        f"label {item.label} is both {known_name!r} and {item.classname!r} at {item.origin}"
                    )
                elif known_label != item.label:
                    problems.append(
                        f"class {item.classname!r} has labels {known_label} and {item.label} at {item.origin}"
                    )
        return problems

    @classmethod
    def require_consistent_labels(cls, entries):
        problems = cls.label_problems(entries)
        if problems:
            raise DatasetError(f"{cls.__name__}: {len(problems)} label problem(s), first: {problems[0]}")

    @classmethod
    def require_images_exist(cls, entries, root):
        missing = [item for items in entries.values() for item in missing_images(items)]
        if missing:
            total = sum(len(items) for items in entries.values())
            raise DatasetError(
                f"{cls.__name__}: {len(missing)} of {total} entries point to missing images, first: "
                f"{missing[0].impath} from {missing[0].origin}; list them all with: {cls.check_command(root)}"
            )

    @classmethod
    def require_images_in(cls, split_items, split, subsample, root):
        """A split left empty by SUBSAMPLE_CLASSES cannot be trained or tested on: say so instead of Dassl's assert."""
        if not split_items:
            raise DatasetError(
                f"{cls.__name__}: the {split} split has no images of the {subsample} classes "
                f"(DATASET.SUBSAMPLE_CLASSES {subsample}); check the split file with {cls.check_command(root)} "
                "or choose other classes"
            )

    @classmethod
    def require_images_readable(cls, datums, entries, root):
        """Open the header of each image, so a broken file fails now rather than mid-training."""
        for impath in dict.fromkeys(datum.impath for datum in datums):
            problem = image_problem(impath)
            if problem:
                origin = next(item.origin for items in entries.values() for item in items if item.impath == impath)
                raise DatasetError(
                    f"{cls.__name__}: image {impath} is {problem}, from {origin}; "
                    f"fix: {cls.bad_image_fix(root)}; list all bad images with: {cls.check_command(root)}"
                )
