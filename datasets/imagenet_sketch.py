from harness.data.download_steps import IMAGENET_CLASSNAMES, Download
from harness.data.imagenet_variant import ImageNetVariant
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetSketch(ImageNetVariant):
    dataset_dir = "imagenet-sketch"
    image_dir = "images"
    config_name = "imagenet_sketch"
    class_count = 1000
    downloads = (
        # The authors' Google Drive file (https://github.com/HaohanWang/ImageNet-Sketch), as TFDS pins it.
        Download("ImageNet-Sketch.zip", gdrive_id="1Mj0i5HBthqH1p_yeXzsg22gZduvgoNeA", extract={"sketch": "images"},
                 sha256="4d3ce6b82a7c48aabf14aeac105eb533e75707f152cc858f55bfc022031a72ed"),
        IMAGENET_CLASSNAMES,
    )
    manual_steps = """\
If the Google Drive download fails (its quota), download ImageNet-Sketch.zip as described at
https://github.com/HaohanWang/ImageNet-Sketch (Google Drive, Kaggle or the Hugging Face dataset
"imagenet_sketch"), then rerun prepare with --url ImageNet-Sketch.zip=file:///path/to/ImageNet-Sketch.zip,
or unzip it yourself and rename its sketch/ folder to {dataset_dir}/images/ (1,000 n* folders)."""
