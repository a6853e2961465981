import os
import re

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.raw_splits import entry, split_trainval
from harness.engine import DATASET_REGISTRY


def action_name(action):
    """'ApplyEyeMakeup' -> 'Apply_Eye_Makeup', also the name of the action's image folder."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


@DATASET_REGISTRY.register()
class UCF101(CoOpDataset):
    dataset_dir = "ucf101"
    image_dir = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"
    config_name = "ucf101"
    class_count = 101
    zeroshot_template = "a photo of a person doing {}."
    downloads = (
        Download("UCF-101-midframes.zip", gdrive_id="10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O",
                 extract={"UCF-101-midframes": "UCF-101-midframes"}),
        Download("split_zhou_UCF101.json", gdrive_id="1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"),
    )

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        list_dir = os.path.join(dataset_dir, "ucfTrainTestlist")
        class_file = os.path.join(list_dir, "classInd.txt")
        cls.require_file(class_file, dataset_dir)
        with open(class_file) as file:
            label_of = {name: int(index) - 1 for index, name in (line.split() for line in file if line.strip())}
        trainval = cls.read_video_list(dataset_dir, os.path.join(list_dir, "trainlist01.txt"), label_of)
        test = cls.read_video_list(dataset_dir, os.path.join(list_dir, "testlist01.txt"), label_of)
        train, val = split_trainval(trainval)
        return {"train": train, "val": val, "test": test}

    @classmethod
    def read_video_list(cls, dataset_dir, path, label_of):
        """Lines `Action/v_Action_g01_c01.avi [label]`; the image is the video's middle frame as .jpg."""
        cls.require_file(path, dataset_dir)
        entries = []
        with open(path) as file:
            for line in file:
                if line.strip():
                    action, video = line.split()[0].split("/")
                    folder = action_name(action)
                    impath = os.path.join(dataset_dir, cls.image_dir, folder, video.replace(".avi", ".jpg"))
                    entries.append(entry(impath, label_of[action], folder))
        return entries
