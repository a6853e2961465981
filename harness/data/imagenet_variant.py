"""ImageNet's test-only variants: a tree of wnid folders named through a copy of ImageNet's classnames.txt."""
import os

from harness.data.class_folders import entries_from_folders, list_class_folders, read_classnames_file
from harness.data.coop_dataset import CoOpDataset
from harness.data.errors import DatasetError


class ImageNetVariant(CoOpDataset):
    """Labels are the indices of the sorted wnid folders present (200 for ImageNet-A/R: a label space of
    their own, as in CoOp); NUM_SHOTS and SUBSAMPLE_CLASSES do not apply."""

    test_only = True

    @classmethod
    def read_entries(cls, dataset_dir):
        cls.require_folder(dataset_dir)
        classnames = cls.read_classnames(dataset_dir)
        tree_dir = os.path.join(dataset_dir, cls.image_dir)
        folders = list_class_folders(tree_dir)
        unnamed = [folder for folder in folders if folder not in classnames]
        if unnamed:
            raise DatasetError(f"{cls.__name__}: folders {unnamed[:3]} of {tree_dir} are not in classnames.txt")
        return {"test": entries_from_folders(tree_dir, folders, classnames.__getitem__)}

    @classmethod
    def read_classnames(cls, dataset_dir):
        fix = cls.prepare_command(os.path.dirname(dataset_dir)) + " (it copies imagenet/classnames.txt)"
        return read_classnames_file(os.path.join(dataset_dir, "classnames.txt"), fix=fix)
