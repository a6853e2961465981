"""Print one key of a YAML config file, for the protocol scripts (e.g. OPTIM.MAX_EPOCH, the epoch to load).

    python scripts/config_value.py configs/trainers/MMA/vit_b16_ep5.yaml OPTIM.MAX_EPOCH

A plain script, not part of the harness package: importing the package imports torch, seconds per call.
"""
import sys

import yaml


def config_value(path, dotted_key):
    with open(path) as file:
        node = yaml.safe_load(file) or {}
    for key in dotted_key.split("."):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(dotted_key)
        node = node[key]
    return node


def main(argv):
    if len(argv) != 2:
        sys.exit("Usage: python scripts/config_value.py CONFIG_FILE KEY")
    path, key = argv
    try:
        print(config_value(path, key))
    except FileNotFoundError:
        sys.exit(f"Error: no config file {path}")
    except KeyError:
        sys.exit(f"Error: {path} does not set {key}; set it there or pass the value to the script")


if __name__ == "__main__":
    main(sys.argv[1:])
