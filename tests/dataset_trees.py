"""Tiny copies of every dataset's real on-disk layout (raw annotations as the archives ship them), with
the class names and split sizes CoOp's rules give them.

Each builder writes its tree under `root` and returns nothing; `TREES` maps config names to
(builder, expected class names in label order, (train, val, test) sizes of the full dataset).
"""
import os

import numpy as np
from dataset_fixtures import write_image, write_json

IMAGES_PER_FOLDER_CLASS = 10  # CoOp's folder split: round(10*0.5)=5 train, round(10*0.2)=2 val, 3 test


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write("".join(f"{line}\n" for line in lines))


def write_mat(path, content):
    from scipy.io import savemat

    os.makedirs(os.path.dirname(path), exist_ok=True)
    savemat(path, content)


def folder_tree(image_dir, folders, count=IMAGES_PER_FOLDER_CLASS, extension="jpg"):
    for shade, folder in enumerate(folders):
        for index in range(count):
            path = os.path.join(image_dir, folder, f"image_{index:04d}.{extension}")
            write_image(path, colour=(shade * 40, index, 0))


def oxford_pets(root):
    folder = os.path.join(root, "oxford_pets")
    lines = {"trainval.txt": [], "test.txt": []}
    for class_id, breed in enumerate(("Abyssinian", "american_bulldog", "Bengal"), start=1):
        for index in range(1, 8):
            name = f"{breed}_{index}"
            write_image(os.path.join(folder, "images", name + ".jpg"))
            species = 1 if breed[0].isupper() else 2
            lines["trainval.txt" if index <= 5 else "test.txt"].append(f"{name} {class_id} {species} {class_id}")
    for list_name, list_lines in lines.items():
        write_lines(os.path.join(folder, "annotations", list_name), list_lines)


def caltech101(root):
    folders = ("BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "accordion", "airplanes")
    folder_tree(os.path.join(root, "caltech-101", "101_ObjectCategories"), folders)


def dtd(root):
    folder_tree(os.path.join(root, "dtd", "images"), ("banded", "blotchy", "braided"))


def eurosat(root):
    folder_tree(os.path.join(root, "eurosat", "2750"), ("AnnualCrop", "Forest", "SeaLake"))


def food101(root):
    folder_tree(os.path.join(root, "food-101", "images"), ("apple_pie", "baby_back_ribs", "baklava"))


def oxford_flowers(root):
    folder = os.path.join(root, "oxford_flowers")
    labels = [2, 1, 3] * IMAGES_PER_FOLDER_CLASS  # 1-based; first appearance order 2, 1, 3
    for index in range(len(labels)):
        write_image(os.path.join(folder, "jpg", f"image_{index + 1:05d}.jpg"))
    write_mat(os.path.join(folder, "imagelabels.mat"), {"labels": np.array([labels])})
    write_json({"1": "pink primrose", "2": "hard-leaved pocket orchid", "3": "canterbury bells"},
               os.path.join(folder, "cat_to_name.json"))


def stanford_cars(root):
    folder = os.path.join(root, "stanford_cars")
    names = ("AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi TTS Coupe 2012")
    class_names = np.empty((1, len(names)), dtype=object)
    class_names[0, :] = names
    write_mat(os.path.join(folder, "devkit", "cars_meta.mat"), {"class_names": class_names})
    for image_folder, annotation_file, per_class in (
        ("cars_train", os.path.join("devkit", "cars_train_annos.mat"), 5),
        ("cars_test", "cars_test_annos_withlabels.mat", 2),
    ):
        annotations = np.zeros((1, len(names) * per_class), dtype=[("fname", "O"), ("class", "O")])
        for index in range(len(names) * per_class):
            fname = f"{index + 1:05d}.jpg"
            write_image(os.path.join(folder, image_folder, fname))
            annotations[0, index] = (fname, np.array([[index % len(names) + 1]], dtype=np.uint8))
        write_mat(os.path.join(folder, annotation_file), {"annotations": annotations})


def sun397(root):
    folder = os.path.join(root, "sun397")
    categories = ("/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop")
    write_lines(os.path.join(folder, "ClassName.txt"), categories)
    lists = {"Training_01.txt": [], "Testing_01.txt": []}
    for category in categories:
        for index in range(7):
            image = f"{category}/sun_{index:04d}.jpg"
            write_image(os.path.join(folder, "SUN397", image[1:]))
            lists["Training_01.txt" if index < 5 else "Testing_01.txt"].append(image)
    for list_name, lines in lists.items():
        write_lines(os.path.join(folder, list_name), lines)


def ucf101(root):
    folder = os.path.join(root, "ucf101")
    actions = ("ApplyEyeMakeup", "Archery", "BabyCrawling")
    class_lines = [f"{index} {action}" for index, action in enumerate(actions, start=1)]
    write_lines(os.path.join(folder, "ucfTrainTestlist", "classInd.txt"), class_lines)
    lists = {"trainlist01.txt": [], "testlist01.txt": []}
    image_folders = ("Apply_Eye_Makeup", "Archery", "Baby_Crawling")
    for label, (action, image_folder) in enumerate(zip(actions, image_folders), start=1):
        for group in range(1, 8):
            video = f"v_{action}_g{group:02d}_c01"
            write_image(os.path.join(folder, "UCF-101-midframes", image_folder, video + ".jpg"))
            if group <= 5:
                lists["trainlist01.txt"].append(f"{action}/{video}.avi {label}")
            else:
                lists["testlist01.txt"].append(f"{action}/{video}.avi")
    for list_name, lines in lists.items():
        write_lines(os.path.join(folder, "ucfTrainTestlist", list_name), lines)


def fgvc_aircraft(root):
    folder = os.path.join(root, "fgvc_aircraft")
    variants = ("707-320", "A300B4", "Falcon 2000")
    write_lines(os.path.join(folder, "variants.txt"), variants)
    counts = {"train": 3, "val": 2, "test": 2}
    image_id = 1000000
    for split, count in counts.items():
        lines = []
        for variant in variants:
            for _ in range(count):
                image_id += 1
                write_image(os.path.join(folder, "images", f"{image_id}.jpg"))
                lines.append(f"{image_id} {variant}")
        write_lines(os.path.join(folder, f"images_variant_{split}.txt"), lines)


IMAGENET_CLASSES = (("n01440764", "tench"), ("n01443537", "goldfish"), ("n01484850", "great white shark"),
                    ("n01491361", "tiger shark"))


def write_classnames(folder, classes=IMAGENET_CLASSES):
    write_lines(os.path.join(folder, "classnames.txt"), [f"{wnid} {name}" for wnid, name in classes])


def imagenet(root):
    folder = os.path.join(root, "imagenet")
    write_classnames(folder)
    wnids = [wnid for wnid, _ in IMAGENET_CLASSES]
    folder_tree(os.path.join(folder, "images", "train"), wnids, count=6, extension="JPEG")
    folder_tree(os.path.join(folder, "images", "val"), wnids, count=3, extension="JPEG")


def imagenetv2(root):
    folder = os.path.join(root, "imagenetv2")
    write_classnames(folder)
    folder_tree(os.path.join(folder, "imagenetv2-matched-frequency-format-val"), ("0", "1", "2", "3"), count=3,
                extension="jpeg")


def imagenet_sketch(root):
    folder = os.path.join(root, "imagenet-sketch")
    write_classnames(folder)
    folder_tree(os.path.join(folder, "images"), [wnid for wnid, _ in IMAGENET_CLASSES], count=2)


def subset_variant(folder, image_dir):
    """ImageNet-A/R: a README.txt beside a subset of the wnid folders, named by the full classnames.txt."""
    write_classnames(folder)
    folder_tree(os.path.join(folder, image_dir), ("n01491361", "n01443537"), count=2)
    write_lines(os.path.join(folder, image_dir, "README.txt"), ["not a class"])


def imagenet_a(root):
    subset_variant(os.path.join(root, "imagenet-adversarial"), "imagenet-a")


def imagenet_r(root):
    subset_variant(os.path.join(root, "imagenet-rendition"), "imagenet-r")


IMAGENET_NAMES = [name for _, name in IMAGENET_CLASSES]
TREES = {
    "oxford_pets": (oxford_pets, ["abyssinian", "american_bulldog", "bengal"], (12, 3, 6)),
    "caltech101": (caltech101, ["face", "leopard", "accordion", "airplane"], (20, 8, 12)),
    "dtd": (dtd, ["banded", "blotchy", "braided"], (15, 6, 9)),
    "eurosat": (eurosat, ["Annual Crop Land", "Forest", "Sea or Lake"], (15, 6, 9)),
    "food101": (food101, ["apple_pie", "baby_back_ribs", "baklava"], (15, 6, 9)),
    "oxford_flowers": (oxford_flowers, ["pink primrose", "hard-leaved pocket orchid", "canterbury bells"], (15, 6, 9)),
    "stanford_cars": (stanford_cars, ["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Audi TTS Coupe"],
                      (12, 3, 6)),
    "sun397": (sun397, ["abbey", "outdoor apartment_building", "shop bakery"], (12, 3, 6)),
    "ucf101": (ucf101, ["Apply_Eye_Makeup", "Archery", "Baby_Crawling"], (12, 3, 6)),
    "fgvc_aircraft": (fgvc_aircraft, ["707-320", "A300B4", "Falcon 2000"], (9, 6, 6)),
    "imagenet": (imagenet, IMAGENET_NAMES, (24, 12, 12)),
    "imagenetv2": (imagenetv2, IMAGENET_NAMES, (12, None, 12)),
    "imagenet_sketch": (imagenet_sketch, IMAGENET_NAMES, (8, None, 8)),
    "imagenet_a": (imagenet_a, ["goldfish", "tiger shark"], (4, None, 4)),
    "imagenet_r": (imagenet_r, ["goldfish", "tiger shark"], (4, None, 4)),
}
TRAINABLE = [name for name, (_, _, sizes) in TREES.items() if sizes[1] is not None]
