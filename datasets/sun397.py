import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.raw_splits import entry, split_trainval
from harness.engine import DATASET_REGISTRY

URL = "https://vision.princeton.edu/projects/2010/SUN/"


def scene_name(category):
    """'a/apartment_building/outdoor' -> 'outdoor apartment_building': drop the letter, reverse the rest."""
    return " ".join(category.split("/")[1:][::-1])


@DATASET_REGISTRY.register()
class SUN397(CoOpDataset):
    dataset_dir = "sun397"
    image_dir = "SUN397"
    split_file = "split_zhou_SUN397.json"
    config_name = "sun397"
    class_count = 397
    partition_files = ("ClassName.txt", "Training_01.txt", "Testing_01.txt")
    downloads = (
        Download("SUN397.tar.gz", url=URL + "SUN397.tar.gz", md5="8ca2778205c41d23104230ba66911c7a",
                 sha256="f404130965a7ad77bed5ececc71e720ab50f3cc1e1bb257257610d38f3b928ec",
                 extract={"SUN397": "SUN397"}),
        Download("Partitions.zip", url=URL + "download/Partitions.zip",
                 sha256="e3311ea5f812d4cc6faef194688343d1111f6cd6f70f2c62f393c2b8d6ba1ec9",
                 extract={name: name for name in partition_files}),
        Download("split_zhou_SUN397.json", gdrive_id="1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"),
    )
    manual_steps = """\
If Princeton's links fail (reported dead at times, CoOp issue #90), get SUN397.tar.gz and Partitions.zip
from a copy and pass --mirror, or extract them by hand into {dataset_dir}/ so that it holds SUN397/a/abbey/...
and ClassName.txt, Training_01.txt, Testing_01.txt. Kaggle's train/test re-packaging does not match the split
file."""

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        class_file = os.path.join(dataset_dir, "ClassName.txt")
        cls.require_file(class_file, dataset_dir)
        with open(class_file) as file:
            categories = [line.strip()[1:] for line in file if line.strip()]
        label_of = {category: label for label, category in enumerate(categories)}
        trainval = cls.read_partition(dataset_dir, "Training_01.txt", label_of)
        test = cls.read_partition(dataset_dir, "Testing_01.txt", label_of)
        train, val = split_trainval(trainval)
        return {"train": train, "val": val, "test": test}

    @classmethod
    def read_partition(cls, dataset_dir, list_name, label_of):
        """Lines like `/a/abbey/sun_aaalbzqrimafwbiv.jpg`."""
        path = os.path.join(dataset_dir, list_name)
        cls.require_file(path, dataset_dir)
        entries = []
        with open(path) as file:
            for line in file:
                image = line.strip()[1:]
                if image:
                    category = os.path.dirname(image)
                    impath = os.path.join(dataset_dir, cls.image_dir, image)
                    entries.append(entry(impath, label_of[category], scene_name(category)))
        return entries
