from harness.data.download_steps import IMAGENET_CLASSNAMES, Download
from harness.data.imagenet_variant import ImageNetVariant
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetR(ImageNetVariant):
    """200 of ImageNet's classes, labelled 0..199 by sorted wnid folder."""

    dataset_dir = "imagenet-rendition"
    image_dir = "imagenet-r"
    config_name = "imagenet_r"
    class_count = 200
    downloads = (
        Download("imagenet-r.tar", url="https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar",
                 sha256="18c6bf493b39a0d975d48e587437f562caab9c52ae6327dcfa9dd8eb54aa1b52",
                 extract={"imagenet-r": "imagenet-r"}),
        IMAGENET_CLASSNAMES,
    )
