import csv
import os

from harness.data.class_folders import entries_from_folders, read_classnames_file
from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import IMAGENET_CLASSNAMES
from harness.data.errors import DatasetError
from harness.data.folder_index import cached_listings
from harness.engine import DATASET_REGISTRY

VAL_SORTING_FIX = (
    "sort the val images into one folder per wnid, e.g. with valprep.sh from "
    "https://github.com/soumith/imagenetloader.torch (run inside images/val), or with "
    "python -m datasets.prepare imagenet --root {root} --sort-val LOC_val_solution.csv (Kaggle's label file)"
)


@DATASET_REGISTRY.register()
class ImageNet(CoOpDataset):
    """No split file: class folders of images/train, with images/val as the test set (and as val)."""

    dataset_dir = "imagenet"
    image_dir = "images"
    config_name = "imagenet"
    class_count = 1000
    index_file = "preprocessed.json"
    downloads = (IMAGENET_CLASSNAMES,)
    manual_steps = """\
ImageNet (ILSVRC2012) needs an account: download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from
https://image-net.org/download-images.php, then
  mkdir -p {dataset_dir}/images/train {dataset_dir}/images/val
  tar -xf ILSVRC2012_img_train.tar -C {dataset_dir}/images/train
      (this gives 1,000 n*.tar files; untar each into its own folder:
       cd {dataset_dir}/images/train &&
       for f in n*.tar; do mkdir ${{f%.tar}} && tar -xf $f -C ${{f%.tar}} && rm $f; done)
  tar -xf ILSVRC2012_img_val.tar -C {dataset_dir}/images/val
The val images arrive in one flat folder: """ + VAL_SORTING_FIX + """.
Symbolic links to an existing copy work: images/train and images/val may point to it."""

    @classmethod
    def read_entries(cls, dataset_dir):
        cls.require_folder(dataset_dir)
        root = os.path.dirname(dataset_dir)
        classnames = read_classnames_file(os.path.join(dataset_dir, "classnames.txt"), fix=cls.prepare_command(root))
        image_dir = os.path.join(dataset_dir, cls.image_dir)
        trees = {"train": os.path.join(image_dir, "train"), "test": os.path.join(image_dir, "val")}
        for tree_dir in trees.values():
            if not os.path.isdir(tree_dir):
                raise DatasetError(f"ImageNet: {tree_dir} not found; see {cls.prepare_command(root)}")
        listings = cached_listings(os.path.join(dataset_dir, cls.index_file), trees)
        cls.require_matching_class_folders(trees, listings, classnames, root)

        def classname_of(folder):
            return classnames[folder]

        return {split: entries_from_folders(trees[split], list(listings[split]), classname_of, listings[split])
                for split in trees}

    @classmethod
    def require_matching_class_folders(cls, trees, listings, classnames, root):
        """Labels are folder indices per split, so train and val must hold the same folders, all named."""
        train_folders, val_folders = list(listings["train"]), list(listings["test"])
        if not val_folders:
            files = len(os.listdir(trees["test"]))
            raise DatasetError(
                f"ImageNet: {trees['test']} has no class folders ({files} files lie there directly); fix: "
                + VAL_SORTING_FIX.format(root=root)
            )
        if train_folders != val_folders:
            differing = sorted(set(train_folders) ^ set(val_folders))
            raise DatasetError(
                f"ImageNet: images/train and images/val hold different class folders ({len(train_folders)} vs "
                f"{len(val_folders)}; e.g. {differing[:3]}), so their labels would not match"
            )
        unnamed = [folder for folder in train_folders if folder not in classnames]
        if unnamed:
            raise DatasetError(f"ImageNet: class folders {unnamed[:3]} are not in classnames.txt")

    @classmethod
    def sort_val_folder(cls, dataset_dir, solution_csv):
        """Move images/val/<id>.JPEG into images/val/<wnid>/ using Kaggle's LOC_val_solution.csv, whose rows
        are `ImageId,PredictionString` with the wnid as the first word of PredictionString."""
        val_dir = os.path.join(dataset_dir, cls.image_dir, "val")
        if not os.path.isfile(solution_csv):
            raise DatasetError(f"{solution_csv} not found")
        moved, absent = 0, 0
        with open(solution_csv, newline="") as file:
            rows = csv.DictReader(file)
            if rows.fieldnames is None or not {"ImageId", "PredictionString"} <= set(rows.fieldnames):
                raise DatasetError(f"{solution_csv}: expected the columns ImageId,PredictionString")
            for line_number, row in enumerate(rows, start=2):
                words = (row["PredictionString"] or "").split()
                if not words:
                    raise DatasetError(f"{solution_csv}: line {line_number} has no wnid")
                source = os.path.join(val_dir, row["ImageId"] + ".JPEG")
                if not os.path.isfile(source):
                    absent += 1
                    continue
                os.makedirs(os.path.join(val_dir, words[0]), exist_ok=True)
                os.replace(source, os.path.join(val_dir, words[0], os.path.basename(source)))
                moved += 1
        print(f"Sorted {moved} val images into class folders; {absent} listed images were not directly in {val_dir}")
