"""The Demo dataset's content: coloured shapes on noisy backgrounds, drawn deterministically.

Each class has its own colour and its own shape, so either cue alone separates the classes and a tiny
randomly initialised model can learn them. Every image has its own numpy generator, seeded by (class,
split, index): the images never depend on, and never disturb, the global random states.
"""
import os
import shutil
import tempfile

# (class name, RGB colour, shape); the label is the position in this list.
SHAPE_CLASSES = (
    ("red circle", (220, 40, 40), "circle"),
    ("blue square", (40, 80, 230), "square"),
    ("green triangle", (40, 180, 60), "triangle"),
    ("yellow diamond", (235, 215, 40), "diamond"),
    ("purple plus", (150, 50, 200), "plus"),
    ("orange ring", (245, 140, 30), "ring"),
    ("cyan stripe", (40, 210, 220), "stripe"),
    ("pink frame", (245, 130, 190), "frame"),
    ("white hourglass", (240, 240, 240), "hourglass"),
    ("brown star", (175, 105, 45), "star"),
)
IMAGES_PER_SPLIT = {"train": 20, "val": 4, "test": 10}
IMAGE_SIZE = 32
BACKGROUND = (60, 60, 60)
NOISE_STD = 10.0
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def folder_name(classname):
    return classname.replace(" ", "_")


def shape_polygon(shape, cx, cy, r):
    """Vertices of the polygonal shapes (centre cx, cy; half-size r)."""
    import math

    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "hourglass":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx - r, cy + r), (cx + r, cy + r)]
    if shape == "star":
        return [
            (cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
             cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5))
            for k in range(10)
        ]
    raise KeyError(shape)


def draw_shape(draw, shape, cx, cy, r, colour):
    box = (cx - r, cy - r, cx + r, cy + r)
    thickness = max(2, round(r / 2.5))
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=thickness)
    elif shape == "frame":
        draw.rectangle(box, outline=colour, width=thickness)
    elif shape == "plus":
        draw.rectangle((cx - thickness / 2, cy - r, cx + thickness / 2, cy + r), fill=colour)
        draw.rectangle((cx - r, cy - thickness / 2, cx + r, cy + thickness / 2), fill=colour)
    elif shape == "stripe":
        draw.rectangle((cx - r, cy - thickness / 2, cx + r, cy + thickness / 2), fill=colour)
    else:
        draw.polygon(shape_polygon(shape, cx, cy, r), fill=colour)


def render(label, split, index):
    """The PIL image for (class label, split, index): jittered position, size and colour, plus pixel noise."""
    import numpy as np

    _, colour, shape = SHAPE_CLASSES[label]
    return render_shape(colour, shape, np.random.default_rng([label, SPLIT_SEEDS[split], index]))


def render_shape(colour, shape, rng):
    """A PIL image of `shape` in `colour` (RGB) drawn with the numpy generator `rng`: any colour-shape pair, as
    the demo CLIP's pretraining (harness/clip/demo_pretraining.py) draws them."""
    import numpy as np
    from PIL import Image, ImageDraw

    r = int(rng.integers(8, 12))
    cx, cy = (IMAGE_SIZE / 2 + rng.integers(-4, 5, size=2)).tolist()
    jittered = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in colour)
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    draw_shape(ImageDraw.Draw(image), shape, cx, cy, r, jittered)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, NOISE_STD, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_shape_images(image_dir):
    """Write every image under image_dir/<class folder>/; returns {split: [[relative path, label, name]]}."""
    splits = {split: [] for split in IMAGES_PER_SPLIT}
    for label, (classname, _, _) in enumerate(SHAPE_CLASSES):
        os.makedirs(os.path.join(image_dir, folder_name(classname)))
        for split, count in IMAGES_PER_SPLIT.items():
            for index in range(count):
                relative_path = f"{folder_name(classname)}/{split}_{index:02d}.jpg"
                render(label, split, index).save(os.path.join(image_dir, relative_path), quality=95)
                splits[split].append([relative_path, label, classname])
    return splits


def create_shapes_dataset(dataset_dir, image_folder, split_file):
    """Create dataset_dir with its images and split file, all or nothing: it is built in a temporary
    sibling folder and renamed into place, so a killed generation leaves no half dataset behind."""
    from harness.json_files import created_folder_mode, write_json_atomic

    parent = os.path.dirname(dataset_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(dataset_dir)}-generating-", dir=parent)
    try:
        os.chmod(staging, created_folder_mode())  # it becomes the dataset folder: the umask's mode, not 0700
        splits = write_shape_images(os.path.join(staging, image_folder))
        write_json_atomic(splits, os.path.join(staging, split_file), indent=4)
        try:
            os.rename(staging, dataset_dir)
        except OSError:
            if not os.path.isfile(os.path.join(dataset_dir, split_file)):
                raise
            # Another process generated the same (deterministic) dataset first: keep theirs.
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
