import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.raw_splits import split_class_folders
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Food101(CoOpDataset):
    dataset_dir = "food-101"
    image_dir = "images"
    split_file = "split_zhou_Food101.json"
    config_name = "food101"
    class_count = 101
    zeroshot_template = "a photo of {}, a type of food."
    downloads = (
        Download("food-101.tar.gz", url="https://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
                 md5="85eeb15f3717b99a5da872d97d918f87",
                 sha256="d97d15e438b7f4498f96086a4f7e2fa42a32f2712e87d3295441b2b6314053a4",
                 extract={"food-101/images": "images", "food-101/meta": "meta"}),
        Download("split_zhou_Food101.json", gdrive_id="1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"),
    )

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        return split_class_folders(os.path.join(dataset_dir, cls.image_dir))
