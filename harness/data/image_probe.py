"""Whether an image file can be read: its header (cheap, done at load) or every pixel (thorough, `check`)."""
import os


def image_problem(path, decode=False):
    """None if the image at `path` reads, else a short description of what is wrong."""
    from PIL import Image

    if not os.path.isfile(path):
        return "missing"
    try:
        with Image.open(path) as image:
            if decode:
                image.convert("RGB")
    except Exception as error:  # PIL raises many types for broken files; all mean "unreadable"
        return f"unreadable ({type(error).__name__}: {error})"
    return None
