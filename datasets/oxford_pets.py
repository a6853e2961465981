import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.raw_splits import entry, split_trainval
from harness.engine import DATASET_REGISTRY

URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"


def breed_of(image_name):
    """'american_bulldog_12' -> 'american_bulldog' (CoOp lowercases the breed)."""
    return "_".join(image_name.split("_")[:-1]).lower()


@DATASET_REGISTRY.register()
class OxfordPets(CoOpDataset):
    dataset_dir = "oxford_pets"
    image_dir = "images"
    split_file = "split_zhou_OxfordPets.json"
    config_name = "oxford_pets"
    class_count = 37
    zeroshot_template = "a photo of a {}, a type of pet."
    downloads = (
        Download("images.tar.gz", url=URL + "images.tar.gz", md5="5c4f3ee8e5d25df40f4fd59a7f44e54c",
                 extract={"images": "images"}),
        Download("annotations.tar.gz", url=URL + "annotations.tar.gz", md5="95a8c909bbe2e81eed6a22bccdf3f68f",
                 extract={"annotations": "annotations"}),
        Download("split_zhou_OxfordPets.json", gdrive_id="1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"),
    )

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        trainval = cls.read_annotations(dataset_dir, "trainval.txt")
        test = cls.read_annotations(dataset_dir, "test.txt")
        train, val = split_trainval(trainval)
        return {"train": train, "val": val, "test": test}

    @classmethod
    def read_annotations(cls, dataset_dir, list_name):
        """annotations/<list>: lines `<image name> <1-based class id> <species> <breed id>`."""
        path = os.path.join(dataset_dir, "annotations", list_name)
        cls.require_file(path, dataset_dir)
        with open(path) as file:
            lines = [line.split() for line in file if line.strip()]
        image_dir = os.path.join(dataset_dir, cls.image_dir)
        return [
            entry(os.path.join(image_dir, name + ".jpg"), int(label) - 1, breed_of(name)) for name, label, *_ in lines
        ]
