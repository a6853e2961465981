import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.raw_splits import entry, split_trainval
from harness.engine import DATASET_REGISTRY


def year_first(name):
    """'AM General Hummer SUV 2000' -> '2000 AM General Hummer SUV' (CoOp's class names)."""
    *words, year = name.split(" ")
    return " ".join([year, *words])


@DATASET_REGISTRY.register()
class StanfordCars(CoOpDataset):
    dataset_dir = "stanford_cars"
    image_dir = ""  # split paths start with cars_train/ or cars_test/
    split_file = "split_zhou_StanfordCars.json"
    config_name = "stanford_cars"
    class_count = 196
    downloads = (
        Download("cars_train.tgz", extract={"cars_train": "cars_train"},
                 sha256="512b227b30e2f0a8aab9e09485786ab4479582073a144998da74d64b801fd288"),
        Download("cars_test.tgz", extract={"cars_test": "cars_test"},
                 sha256="bffea656d6f425cba3c91c6d83336e4c5f86c6cffd8975b0f375d3a10da8e243"),
        Download("car_devkit.tgz", extract={"devkit": "devkit"},
                 sha256="b97deb463af7d58b6bfaa18b2a4de9829f0f79e8ce663dfa9261bf7810e9accd"),
        Download("cars_test_annos_withlabels.mat",
                 sha256="790f75be8ea34eeded134cc559332baf23e30e91367e9ddca97d26ed9b895f05"),
        Download("split_zhou_StanfordCars.json", gdrive_id="1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),
    )
    manual_steps = """\
Stanford's own links (http://ai.stanford.edu/~jkrause/car196/cars_train.tgz, cars_test.tgz,
https://ai.stanford.edu/~jkrause/cars/car_devkit.tgz, cars_test_annos_withlabels.mat) return 404.
Get the same files from a copy, e.g. the Kaggle dataset "jessicali9530/stanford-cars-dataset" (images),
car_devkit.tgz and cars_test_annos_withlabels.mat as re-hosted in pytorch/vision issue #7545, then either
serve them from a folder (--mirror file-server-URL) or arrange them by hand as:
  {dataset_dir}/cars_train/00001.jpg ...   (8,144 images)
  {dataset_dir}/cars_test/00001.jpg ...    (8,041 images)
  {dataset_dir}/devkit/cars_meta.mat, devkit/cars_train_annos.mat
  {dataset_dir}/cars_test_annos_withlabels.mat
Kaggle's copy nests the folders (cars_train/cars_train/): move the inner folders up."""

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        meta = os.path.join(dataset_dir, "devkit", "cars_meta.mat")
        trainval = cls.read_annotations(dataset_dir, "cars_train", os.path.join("devkit", "cars_train_annos.mat"), meta)
        test = cls.read_annotations(dataset_dir, "cars_test", "cars_test_annos_withlabels.mat", meta)
        train, val = split_trainval(trainval)
        return {"train": train, "val": val, "test": test}

    @classmethod
    def read_annotations(cls, dataset_dir, image_folder, annotation_file, meta_file):
        from scipy.io import loadmat

        annotation_file = os.path.join(dataset_dir, annotation_file)
        cls.require_file(annotation_file, dataset_dir)
        cls.require_file(meta_file, dataset_dir)
        names = [str(name[0]) for name in loadmat(meta_file)["class_names"][0]]
        entries = []
        for annotation in loadmat(annotation_file)["annotations"][0]:
            label = int(annotation["class"][0, 0]) - 1
            impath = os.path.join(dataset_dir, image_folder, str(annotation["fname"][0]))
            entries.append(entry(impath, label, year_first(names[label])))
        return entries
