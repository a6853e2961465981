"""`python -m harness.dropin PATH`: copy into the CoOp-family checkout at PATH what it needs to run MMA,
RMAdapter and RMMA: the harness/ package, trainers/{mma,rmadapter,rmma}.py and their configs/trainers/<name>/.

A file already there with the same content is left as it is; one with other content is never overwritten: the
command then copies nothing and names the files in the way. Running it again changes nothing. It ends by saying
which of the two edits of PATH/train.py (docs/DROP_IN.md) are still to be made.
"""
import argparse
import filecmp
import os
import shutil
import sys

from harness.dropin import DROP_IN_TRAINERS, EXTEND_CALL, IMPORT_LINE
from harness.errors import UserError

# The checkout this module belongs to: the source of every copied file.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class DropInError(UserError):
    pass


def files_to_copy(source_root=SOURCE_ROOT):
    """Paths relative to the checkout root: every file of harness/ (bytecode and hidden files aside), then the
    methods' trainer modules and configs."""
    paths = []
    for directory, subdirs, files in os.walk(os.path.join(source_root, "harness")):
        subdirs[:] = sorted(name for name in subdirs if name != "__pycache__")
        paths += [os.path.relpath(os.path.join(directory, name), source_root) for name in sorted(files)
                  if not name.endswith(".pyc") and not name.startswith(".")]
    paths += [os.path.join("trainers", f"{module}.py") for module in DROP_IN_TRAINERS]
    for name in DROP_IN_TRAINERS.values():
        config_dir = os.path.join("configs", "trainers", name)
        paths += [os.path.join(config_dir, file) for file in sorted(os.listdir(os.path.join(source_root, config_dir)))]
    return paths


def check_host(host_root, source_root=SOURCE_ROOT):
    has_train_py = os.path.isfile(os.path.join(host_root, "train.py"))
    if not has_train_py or not os.path.isdir(os.path.join(host_root, "trainers")):
        raise DropInError(f"{host_root} has no train.py and trainers/: give the root folder of a CoOp-family "
                          "checkout (CoOp, MaPLe, PromptSRC).")
    if os.path.samefile(host_root, source_root):
        raise DropInError(f"{host_root} is this harness's own checkout: give the other checkout's root folder.")


def plan(host_root, source_root=SOURCE_ROOT):
    """(to_write, unchanged, conflicting): the relative paths that are absent from the host, there with the same
    content, and there with other content."""
    to_write, unchanged, conflicting = [], [], []
    for path in files_to_copy(source_root):
        target = os.path.join(host_root, path)
        if not os.path.lexists(target):
            to_write.append(path)
        elif os.path.isfile(target) and filecmp.cmp(os.path.join(source_root, path), target, shallow=False):
            unchanged.append(path)
        else:
            conflicting.append(path)
    return to_write, unchanged, conflicting


def copy_into(host_root, source_root=SOURCE_ROOT):
    """Copy what is missing; (written, unchanged). Raises DropInError, having copied nothing, on any conflict."""
    check_host(host_root, source_root)
    to_write, unchanged, conflicting = plan(host_root, source_root)
    if conflicting:
        listed = ", ".join(conflicting[:5]) + (f" and {len(conflicting) - 5} more" if len(conflicting) > 5 else "")
        raise DropInError(f"Nothing copied: {host_root} already has other files at {listed}. Move them away (or "
                          "delete them if an earlier drop-in wrote them) and run again.")
    for path in to_write:
        target = os.path.join(host_root, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(source_root, path), target)
    return to_write, unchanged


def missing_train_py_edits(train_py_text):
    """The edits of the host's train.py (docs/DROP_IN.md, step 2) not made yet, as instructions."""
    lines = train_py_text.splitlines()
    import_at = next((i for i, line in enumerate(lines) if line.startswith(IMPORT_LINE.split("  #")[0])), None)
    first_dassl = next((i for i, line in enumerate(lines) if line.startswith(("from dassl", "import dassl"))), None)
    missing = []
    if import_at is None:
        missing.append(f"add this line before its first dassl import: {IMPORT_LINE}")
    elif first_dassl is not None and first_dassl < import_at:
        missing.append(f"move this line above line {first_dassl + 1} ({lines[first_dassl].strip()}): "
                       f"{lines[import_at]}")
    if not any(line.strip() == EXTEND_CALL for line in lines):
        missing.append(f"add `{EXTEND_CALL}` as the last line of its extend_cfg(cfg)")
    return missing


def summarize(paths):
    """`harness/ (61 files), trainers/mma.py, ..., configs/trainers/MMA/ (4 files), ...`"""
    counts = {}
    for path in paths:
        group = _summary_group(path)
        counts[group] = counts.get(group, 0) + 1
    return ", ".join(f"{group} ({count} files)" if group.endswith("/") else group for group, count in counts.items())


def _summary_group(path):
    """The folder a copied file is counted under (harness/, a config folder), or the file itself."""
    top = path.split(os.sep)[0]
    if top == "harness":
        return "harness/"
    if top == "configs":
        return os.path.dirname(path) + "/"
    return path


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m harness.dropin", description=__doc__.splitlines()[0])
    parser.add_argument("host_root", metavar="PATH", help="root folder of the CoOp-family checkout (holds train.py)")
    return parser


def main(argv=None):
    host_root = os.path.abspath(build_parser().parse_args(argv).host_root)
    try:
        written, unchanged = copy_into(host_root)
    except DropInError as error:
        sys.exit(f"Error: {error}")
    print(f"Wrote {len(written)} files into {host_root}" + (f": {summarize(written)}" if written else ""))
    if unchanged:
        print(f"Already there and identical: {len(unchanged)} files")
    with open(os.path.join(host_root, "train.py")) as train_py:
        to_do = missing_train_py_edits(train_py.read())
    for instruction in to_do:
        print(f"To do in {os.path.join(host_root, 'train.py')}: {instruction}")
    if not to_do:
        print("train.py already imports harness.dropin.host and calls extend_host_cfg(cfg): ready.")
