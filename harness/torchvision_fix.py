"""Make `import torchvision` work when its compiled ops cannot load.

torchvision==0.28.0 is the only release that pins torch==2.13.0, and its wheel is a CUDA build. Against
the CPU torch its C++ ops are missing, and the import dies in torchvision's meta registrations with
`RuntimeError: operator torchvision::nms does not exist`. Declaring the schemas of the two operators it
registers fakes for lets the pure-Python parts (transforms, datasets, models) import; `ops.nms` and
`torchvision.io` decoding stay unavailable (the harness reads images with PIL).

Where torchvision's ops load (a matched install, e.g. on a GPU machine) this does nothing.
"""
import sys

_MISSING_OPERATOR_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

# The Library object owns the schema definitions: it must live as long as the process.
_schema_library = None


def ensure_torchvision_importable():
    """Import torchvision, declaring its missing operator schemas first if its own ops failed to load."""
    global _schema_library
    try:
        import torchvision
        return
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]

    import torch

    _schema_library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _MISSING_OPERATOR_SCHEMAS.values():
        _schema_library.define(schema)
    import torchvision  # noqa: F401
