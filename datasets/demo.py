import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.errors import DatasetError
from harness.data.synthetic_shapes import SHAPE_CLASSES, create_shapes_dataset
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Demo(CoOpDataset):
    """Ten classes of coloured shapes (32x32 JPEG; 20 train, 4 val, 10 test per class), in CoOp's on-disk
    format, generated under <ROOT>/demo/ on first use: a dataset for smoke tests and tutorials."""

    dataset_dir = "demo"
    image_dir = "images"
    split_file = "split_zhou_Demo.json"
    config_name = "demo"
    class_count = len(SHAPE_CLASSES)
    known_classnames = tuple(classname for classname, _, _ in SHAPE_CLASSES)
    generated_on_first_use = True

    @classmethod
    def ensure_split_file(cls, dataset_dir):
        if os.path.isfile(os.path.join(dataset_dir, cls.split_file)):
            return
        if os.path.isdir(dataset_dir) and os.listdir(dataset_dir):
            raise DatasetError(
                f"Demo: {dataset_dir} exists but has no {cls.split_file}; delete the folder so it is generated again"
            )
        create_shapes_dataset(dataset_dir, cls.image_dir, cls.split_file)
        print(f"Generated the Demo dataset in {dataset_dir}")
