import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.raw_splits import split_class_folders
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Caltech101(CoOpDataset):
    dataset_dir = "caltech-101"
    image_dir = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"
    config_name = "caltech101"
    class_count = 100
    ignored_folders = ("BACKGROUND_Google", "Faces_easy")
    classname_renames = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
    downloads = (
        # CoOp's link (vision.caltech.edu) is offline; the dataset's current home serves a zip holding the tar.gz.
        Download("caltech-101.zip", url="https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip",
                 md5="3138e1922a9193bfa496528edbbc45d0", nested=("caltech-101/101_ObjectCategories.tar.gz",),
                 extract={"101_ObjectCategories": "101_ObjectCategories"}),
        Download("split_zhou_Caltech101.json", gdrive_id="1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"),
    )

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        image_dir = os.path.join(dataset_dir, cls.image_dir)
        return split_class_folders(image_dir, ignored=cls.ignored_folders, renames=cls.classname_renames)
