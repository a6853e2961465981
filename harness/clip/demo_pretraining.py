"""The `tiny-demo` backbone: the tiny CLIP pretrained contrastively on the demo's own kind of images, so that the
demo shows base-to-novel generalisation instead of chance.

Every image of the Demo dataset is a coloured shape; each of its 10 classes is one colour-shape pair, with each
colour and each shape used by one class only ("red circle", ..., "brown star"). Pretraining draws the same kind of
images for the other 90 pairs of those colours and shapes ("a photo of a red square.", ...): every colour word and
every shape word is seen, but no demo class is, so zero-shot CLIP on the demo's base and new classes is
compositional generalisation, and adapters have something to keep or lose on the new classes.

Deterministic (fixed seeds, one thread, the recipe below) and offline; about half a minute of CPU. The weights are
cached in `$HARNESS_CACHE_DIR` (default `~/.cache/harness`) under a name that hashes the recipe, the code that
draws and trains, the tiny architecture and the torch version, so any change of those trains again. Concurrent
first uses (a sweep's workers) wait on a lock and the first one trains; the file appears by an atomic rename.
"""
import fcntl
import hashlib
import io
import json
import math
import os

import torch
import torch.nn.functional as F

from harness.clip.towers import encode_image, encode_text, tokenize
from harness.data import synthetic_shapes
from harness.data.synthetic_shapes import SHAPE_CLASSES, render_shape
from harness.json_files import write_file_atomic

RECIPE = {
    "shapes_per_colour": 3,
    "images_per_pair": 48,
    "steps": 70,
    "batch_size": 96,
    "learning_rate": 2e-3,
    "weight_decay": 0.0,
    "seed": 0,
    "caption": "a photo of a {}.",
    "jpeg_quality": 95,
    # CLIP's normalisation, as configs/trainers/*/demo.yaml's INPUT.PIXEL_MEAN / PIXEL_STD.
    "pixel_mean": [0.48145466, 0.4578275, 0.40821073],
    "pixel_std": [0.26862954, 0.26130258, 0.27577711],
}
CACHE_VARIABLE = "HARNESS_CACHE_DIR"
# Seeds of the pretraining images start here, away from the Demo dataset's own (label, split, index) seeds.
IMAGE_SEED_OFFSET = 1000


def colour_shape_words():
    """[(colour word, RGB), ...] and [shape, ...] of the demo classes ("red circle" -> "red", "circle")."""
    colours = [(name.split()[0], rgb) for name, rgb, _ in SHAPE_CLASSES]
    shapes = [shape for _, _, shape in SHAPE_CLASSES]
    return colours, shapes


def pretraining_pairs(recipe=None):
    """(colour index, shape index) pairs: colour c with shapes c+1..c+n (mod 10), so every colour and every shape
    comes with n partners, and no pair is a demo class (the demo's class k is pair (k, k))."""
    recipe = recipe or RECIPE
    count = len(SHAPE_CLASSES)
    return [(colour, (colour + offset) % count) for colour in range(count)
            for offset in range(1, recipe["shapes_per_colour"] + 1)]


def pretraining_images(pairs, recipe):
    """(normalised images N x 3 x 32 x 32, pair index per image): drawn as the demo's images and, like them,
    stored as JPEG and decoded again."""
    import numpy as np
    from PIL import Image

    colours, shapes = colour_shape_words()
    mean, std = (torch.tensor(recipe[key]).view(3, 1, 1) for key in ("pixel_mean", "pixel_std"))
    images, labels = [], []
    for pair_index, (colour, shape) in enumerate(pairs):
        for index in range(recipe["images_per_pair"]):
            rng = np.random.default_rng([IMAGE_SEED_OFFSET + colour, shape, index])
            encoded = io.BytesIO()
            render_shape(colours[colour][1], shapes[shape], rng).save(encoded, format="JPEG",
                                                                      quality=recipe["jpeg_quality"])
            pixels = np.asarray(Image.open(encoded).convert("RGB"), dtype=np.float32) / 255.0
            images.append((torch.from_numpy(pixels).permute(2, 0, 1) - mean) / std)
            labels.append(pair_index)
    return torch.stack(images), torch.tensor(labels)


def captions(pairs, recipe):
    colours, shapes = colour_shape_words()
    return [recipe["caption"].format(f"{colours[colour][0]} {shapes[shape]}") for colour, shape in pairs]


def pretrain(clip, recipe=RECIPE):
    """Train `clip` in place: each image against the captions of all pretraining pairs (CLIP's image-to-text
    loss with the batch's duplicate captions merged) plus the text-to-image loss over the batch's images."""
    pairs = pretraining_pairs(recipe)
    generator = torch.Generator().manual_seed(recipe["seed"])
    images, labels = pretraining_images(pairs, recipe)
    tokens = tokenize(captions(pairs, recipe))
    clip.train()
    with torch.no_grad():
        clip.logit_scale.fill_(math.log(1 / 0.07))  # CLIP's initial temperature
    # The token embedding (49,408 rows, 90% of the parameters, about 25 of them used) keeps its random rows: distinct
    # words stay distinct, the text blocks learn what they mean, and the step costs a tenth.
    clip.token_embedding.requires_grad_(False)
    trained = [parameter for parameter in clip.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=recipe["learning_rate"], weight_decay=recipe["weight_decay"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe["steps"])
    for _ in range(recipe["steps"]):
        batch = torch.randint(0, len(labels), (recipe["batch_size"],), generator=generator)
        image_features = F.normalize(encode_image(clip.visual, images[batch]), dim=-1)
        text_features = F.normalize(encode_text(clip, tokens), dim=-1)
        logits = clip.logit_scale.exp() * image_features @ text_features.t()
        batch_labels = labels[batch]
        # Text to image: each caption present in the batch against the batch's images, all of its images correct.
        present = batch_labels.unique()
        targets = (batch_labels[None, :] == present[:, None]).float()
        text_to_image = F.cross_entropy(logits.t()[present], targets / targets.sum(dim=1, keepdim=True))
        loss = (F.cross_entropy(logits, batch_labels) + text_to_image) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, torch.log(torch.tensor(100.0)))
    clip.token_embedding.requires_grad_(True)
    return clip.eval()


def recipe_key(recipe=RECIPE):
    """A hash of everything the weights depend on: the recipe, this file, the image generator, the architecture
    file and the torch version."""
    sources = [__file__, synthetic_shapes.__file__,
               os.path.join(os.path.dirname(__file__), "model_configs", "tiny.json")]
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for path in sources:
        with open(path, "rb") as source:
            digest.update(source.read())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()[:16]


def cache_dir():
    return os.environ.get(CACHE_VARIABLE) or os.path.expanduser("~/.cache/harness")


def pretrained_demo_state_dict(random_clip):
    """The pretrained weights for `random_clip` (the tiny CLIP at its fixed initialisation), from the cache or
    trained now and cached."""
    directory = cache_dir()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"tiny-demo-{recipe_key()}.pt")
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent first use waits here, then finds the file
        if not os.path.isfile(path):
            print(f"Pretraining the tiny-demo CLIP (once; cached as {path})", flush=True)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # the same floating-point reductions whatever the machine's thread count
            try:
                with torch.random.fork_rng(devices=[]):
                    state_dict = pretrain(random_clip).state_dict()
            finally:
                torch.set_num_threads(threads)
            write_file_atomic(path, lambda file: torch.save(state_dict, file))
    return torch.load(path, map_location="cpu", weights_only=True)
