"""Class prompts of the hand-written kind the adapter methods share (MMA's official format)."""


def context_prompts(context, classnames):
    """`"{context} {class}."` per class, e.g. "a photo of a dog." (class names with `_` already spaces)."""
    return [f"{context} {name}." for name in classnames]
