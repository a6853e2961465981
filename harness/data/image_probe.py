"""Reading images, and whether an image file can be read: its header (cheap, done at load) or every pixel
(thorough: `check --decode`, and the loaders when a read fails)."""
import os


def refuse_truncated_images():
    """Pillow pads a truncated file with grey instead of failing when LOAD_TRUNCATED_IMAGES is set (some
    libraries set it): a run must never evaluate or train on such a file, so it is switched back off."""
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False


def read_image(path):
    """The image at `path` (a path or a binary file) as RGB, decoded (Dassl's read_image, with truncated files
    refused)."""
    from PIL import Image

    refuse_truncated_images()
    with Image.open(path) as image:
        return image.convert("RGB")


def image_problem(path, decode=False):
    """None if the image at `path` reads, else a short description of what is wrong."""
    from PIL import Image

    if not os.path.isfile(path):
        return "missing"
    try:
        if decode:
            read_image(path)
        else:
            with Image.open(path):
                pass
    except Exception as error:  # PIL raises many types for broken files; all mean "unreadable"
        return f"unreadable ({type(error).__name__}: {error})"
    return None
