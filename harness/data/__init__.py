"""The CoOp dataset machinery the dataset descriptions in `datasets/` are built on: split files, few-shot draws,
base/new classes, class-folder trees, image checks and downloads."""
