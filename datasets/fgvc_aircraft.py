import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.errors import DatasetError
from harness.data.split_entries import SplitEntry
from harness.engine import DATASET_REGISTRY

LISTS = {"train": "images_variant_train.txt", "val": "images_variant_val.txt", "test": "images_variant_test.txt"}


@DATASET_REGISTRY.register()
class FGVCAircraft(CoOpDataset):
    """No split file: CoOp reads the official variant lists every time."""

    dataset_dir = "fgvc_aircraft"
    image_dir = "images"
    config_name = "fgvc_aircraft"
    class_count = 100
    zeroshot_template = "a photo of a {}, a type of aircraft."
    downloads = (
        Download("fgvc-aircraft-2013b.tar.gz",
                 url="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
                 sha256="d5f68b1b81d6d7831eb9d5c5517074176b5dfbce6bcb43dc14ed1c66a87b8d75",
                 extract={f"fgvc-aircraft-2013b/data/{name}": name
                          for name in ("images", "variants.txt", *LISTS.values())}),
    )

    @classmethod
    def read_entries(cls, dataset_dir):
        cls.require_folder(dataset_dir)
        variants_file = os.path.join(dataset_dir, "variants.txt")
        cls.require_file(variants_file, dataset_dir)
        with open(variants_file) as file:
            label_of = {line.strip(): label for label, line in enumerate(file)}
        return {split: cls.read_list(dataset_dir, list_name, label_of) for split, list_name in LISTS.items()}

    @classmethod
    def read_list(cls, dataset_dir, list_name, label_of):
        """Lines `<image id> <variant words>`, e.g. `1025794 707-320`."""
        path = os.path.join(dataset_dir, list_name)
        cls.require_file(path, dataset_dir)
        entries = []
        with open(path) as file:
            for line_number, line in enumerate(file, start=1):
                image_id, *words = line.strip().split(" ")
                variant = " ".join(words)
                if variant not in label_of:
                    raise DatasetError(f"{path}: line {line_number} names variant {variant!r}, not in variants.txt")
                impath = os.path.join(dataset_dir, cls.image_dir, image_id + ".jpg")
                entries.append(SplitEntry(impath, label_of[variant], variant, f"{list_name} line {line_number}"))
        return entries
