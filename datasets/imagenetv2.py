import os

from harness.data.class_folders import entries_from_folders
from harness.data.download_steps import IMAGENET_CLASSNAMES, Download
from harness.data.errors import DatasetError
from harness.data.imagenet_variant import ImageNetVariant
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetV2(ImageNetVariant):
    """Folders are named by ImageNet label (0..999): folder i holds the class on line i+1 of classnames.txt."""

    dataset_dir = "imagenetv2"
    image_dir = "imagenetv2-matched-frequency-format-val"
    config_name = "imagenetv2"
    class_count = 1000
    downloads = (
        Download("imagenetv2-matched-frequency.tar.gz",
                 # The authors' Hugging Face copy, which TFDS pins (their S3 bucket serves the same file).
                 url="https://huggingface.co/datasets/vaishaal/ImageNetV2/resolve/main/imagenetv2-matched-frequency.tar.gz",
                 sha256="f0c37fdf925916b19ea1323cd9a2208cdb6959ba2c32eef2a7fc393835c9ca7c",
                 extract={image_dir: image_dir}),
        IMAGENET_CLASSNAMES,
    )

    @classmethod
    def read_entries(cls, dataset_dir):
        cls.require_folder(dataset_dir)
        names = list(cls.read_classnames(dataset_dir).values())
        tree_dir = os.path.join(dataset_dir, cls.image_dir)
        folders = [str(label) for label in range(len(names))]
        absent = [folder for folder in folders if not os.path.isdir(os.path.join(tree_dir, folder))]
        if absent:
            raise DatasetError(f"ImageNetV2: {len(absent)} label folders missing in {tree_dir}, e.g. {absent[:3]}; "
                               f"fix: {cls.prepare_command(os.path.dirname(dataset_dir))}")
        return {"test": entries_from_folders(tree_dir, folders, lambda folder: names[int(folder)])}
