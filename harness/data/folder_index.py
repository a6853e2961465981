"""Listings of large class-per-folder trees, cached as JSON (CoOp pickles ImageNet's as `preprocessed.pkl`).

The cache stores image names per class folder and is used only while the modification times of the
trees and of every class folder are unchanged, i.e. no image or folder was added, removed or renamed, and
while its listings match the digest stored with them (a hand-edited file is listed again, with a line saying so).
"""
import hashlib
import json
import os

from harness.data.class_folders import list_class_folders, list_images
from harness.data.errors import DatasetError
from harness.json_files import read_json_file, write_json_atomic

INDEX_FORMAT = "class-folder-index-v2"  # v2: listings_sha256


def cached_listings(cache_path, trees):
    """{tree name: {class folder: [image names]}} for trees given as {tree name: folder}."""
    key = {name: _tree_fingerprint(tree_dir) for name, tree_dir in trees.items()}
    if os.path.isfile(cache_path):
        try:
            content = read_json_file(cache_path, error_type=DatasetError)
        except ValueError:
            content = {}
        if content.get("format") == INDEX_FORMAT and content.get("key") == key:
            if content.get("listings_sha256") == _digest(content.get("listings")):
                print(f"Loading preprocessed index from {cache_path}")
                return content["listings"]
            print(f"Index {cache_path} was edited (its listings do not match their digest); listing the folders again")
    listings = {
        name: {folder: list_images(os.path.join(tree_dir, folder)) for folder in list_class_folders(tree_dir)}
        for name, tree_dir in trees.items()
    }
    try:
        content = {"format": INDEX_FORMAT, "key": key, "listings": listings, "listings_sha256": _digest(listings)}
        write_json_atomic(content, cache_path)
        print(f"Saved preprocessed index to {cache_path}")
    except OSError as error:  # read-only data folder: list again next time
        print(f"Could not save the index {cache_path} ({error}); it will be rebuilt next time")
    return listings


def _tree_fingerprint(tree_dir):
    folders = sorted([e.name, e.stat().st_mtime_ns] for e in os.scandir(tree_dir) if e.is_dir())
    return [os.stat(tree_dir).st_mtime_ns, folders]


def _digest(listings):
    return hashlib.sha256(json.dumps(listings, sort_keys=True).encode()).hexdigest()
