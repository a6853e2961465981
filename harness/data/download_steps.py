"""What `python -m datasets.prepare` fetches for a dataset: data declared in each dataset file."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Download:
    """One file to fetch into a dataset folder, and what to take out of it if it is an archive.

    `filename` is the file's name on a mirror (`--mirror URL` fetches `URL/filename`). Without `url` or
    `gdrive_id` there is no public download: `prepare` prints the dataset's manual steps instead.
    """

    filename: str
    url: str = ""
    gdrive_id: str = ""
    md5: str = ""
    sha256: str = ""
    # Archive: {path inside it (a leading wrapper folder is allowed): path under the dataset folder}.
    # Empty: the file itself goes to <dataset folder>/<filename>.
    extract: dict = field(default_factory=dict)
    nested: tuple = ()  # archives inside the archive to unpack too (Caltech's zip holds a .tar.gz)
    copy_from: str = ""  # a file under the data root to copy instead, when present (ImageNet's classnames.txt)

    @property
    def products(self):
        """Paths under the dataset folder that exist once this step is done."""
        return tuple(self.extract.values()) if self.extract else (self.filename,)


# CLIP's ImageNet class names as CoOp ships them; ImageNet's variants use a copy of the same file.
IMAGENET_CLASSNAMES = Download(
    "classnames.txt", gdrive_id="1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF", copy_from="imagenet/classnames.txt"
)
