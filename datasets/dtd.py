import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.raw_splits import split_class_folders
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class DescribableTextures(CoOpDataset):
    dataset_dir = "dtd"
    image_dir = "images"
    split_file = "split_zhou_DescribableTextures.json"
    config_name = "dtd"
    class_count = 47
    zeroshot_template = "{} texture."
    downloads = (
        Download("dtd-r1.0.1.tar.gz", url="https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
                 md5="fff73e5086ae6bdbea199a49dfb8a4c1",
                 extract={"dtd/images": "images", "dtd/imdb": "imdb", "dtd/labels": "labels"}),
        Download("split_zhou_DescribableTextures.json", gdrive_id="1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"),
    )

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        return split_class_folders(os.path.join(dataset_dir, cls.image_dir))
