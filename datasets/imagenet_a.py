from harness.data.download_steps import IMAGENET_CLASSNAMES, Download
from harness.data.imagenet_variant import ImageNetVariant
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetA(ImageNetVariant):
    """200 of ImageNet's classes, labelled 0..199 by sorted wnid folder."""

    dataset_dir = "imagenet-adversarial"
    image_dir = "imagenet-a"
    config_name = "imagenet_a"
    class_count = 200
    downloads = (
        Download("imagenet-a.tar", url="https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar",
                 sha256="3bb3632277e6ba6392ea64c02ddbf4dd2266c9caffd6bc09c9656d28f012589e",
                 extract={"imagenet-a": "imagenet-a"}),
        IMAGENET_CLASSNAMES,
    )
