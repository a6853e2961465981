from harness.data.download_steps import IMAGENET_CLASSNAMES, Download
from harness.data.imagenet_variant import ImageNetVariant
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetSketch(ImageNetVariant):
    dataset_dir = "imagenet-sketch"
    image_dir = "images"
    config_name = "imagenet_sketch"
    class_count = 1000
    downloads = (Download("ImageNet-Sketch.zip", extract={"sketch": "images"}), IMAGENET_CLASSNAMES)
    manual_steps = """\
ImageNet-Sketch has no direct link: download ImageNet-Sketch.zip as described at
https://github.com/HaohanWang/ImageNet-Sketch (Google Drive, Kaggle or the Hugging Face dataset
"imagenet_sketch"), then rerun prepare with --url ImageNet-Sketch.zip=file:///path/to/ImageNet-Sketch.zip,
or unzip it yourself and rename its sketch/ folder to {dataset_dir}/images/ (1,000 n* folders)."""
