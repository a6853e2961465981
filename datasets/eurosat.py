import os

from harness.data.coop_dataset import CoOpDataset
from harness.data.download_steps import Download
from harness.data.raw_splits import split_class_folders
from harness.engine import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class EuroSAT(CoOpDataset):
    dataset_dir = "eurosat"
    image_dir = "2750"
    split_file = "split_zhou_EuroSAT.json"
    config_name = "eurosat"
    class_count = 10
    zeroshot_template = "a centered satellite photo of {}."
    classname_renames = {
        "AnnualCrop": "Annual Crop Land",
        "Forest": "Forest",
        "HerbaceousVegetation": "Herbaceous Vegetation Land",
        "Highway": "Highway or Road",
        "Industrial": "Industrial Buildings",
        "Pasture": "Pasture Land",
        "PermanentCrop": "Permanent Crop Land",
        "Residential": "Residential Buildings",
        "River": "River",
        "SeaLake": "Sea or Lake",
    }
    known_classnames = tuple(classname_renames.values())
    downloads = (
        # CoOp's link (madm.dfki.de) is offline; this is torchvision's copy of the same EuroSAT.zip (RGB, 2750/).
        Download("EuroSAT.zip", url="https://huggingface.co/datasets/torchgeo/eurosat/resolve/"
                 "c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
                 md5="c8fa014336c82ac7804f0398fcb19387", extract={"2750": "2750"}),
        Download("split_zhou_EuroSAT.json", gdrive_id="1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"),
    )

    @classmethod
    def build_raw_splits(cls, dataset_dir):
        return split_class_folders(os.path.join(dataset_dir, cls.image_dir), renames=cls.classname_renames)
