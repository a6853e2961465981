import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.errors import DatasetError
from harness.data.raw_splits import split_groups
from harness.engine import DATASET_REGISTRY
from harness.json_files import read_json_file

URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"


@DATASET_REGISTRY.register()
class OxfordFlowers(CoOpDataset):
    dataset_dir = "oxford_flowers"
    image_dir = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"
    config_name = "oxford_flowers"
    class_count = 102
    zeroshot_template = "a photo of a {}, a type of flower."
    downloads = (
        Download("102flowers.tgz", url=URL + "102flowers.tgz", md5="52808999861908f626f3c1f4e79d11fa",
                 extract={"jpg": "jpg"}),
        Download("imagelabels.mat", url=URL + "imagelabels.mat", md5="e0620be6f572b9609742df49c70aed4d"),
        Download("cat_to_name.json", gdrive_id="1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0"),
        Download("split_zhou_OxfordFlowers.json", gdrive_id="1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"),
    )

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        """imagelabels.mat gives image_{i+1:05d}.jpg its 1-based class; cat_to_name.json names the class."""
        from scipy.io import loadmat

        label_file = os.path.join(dataset_dir, "imagelabels.mat")
        names_file = os.path.join(dataset_dir, "cat_to_name.json")
        cls.require_file(label_file, dataset_dir)
        cls.require_file(names_file, dataset_dir)
        names = read_json_file(names_file, error_type=DatasetError)
        impaths_by_label = {}
        for index, label in enumerate(loadmat(label_file)["labels"][0]):
            impath = os.path.join(dataset_dir, cls.image_dir, f"image_{index + 1:05d}.jpg")
            impaths_by_label.setdefault(int(label), []).append(impath)
        groups = [(label - 1, names[str(label)], impaths) for label, impaths in impaths_by_label.items()]
        return split_groups(groups)
