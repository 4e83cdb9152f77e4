"""Dataset reinforcement (MobileCLIP, arXiv 2311.17049, section 3; docs/REINFORCE.md, docs/REPLAY.md):
plain image-text pairs -> J augmentations drawn as torchvision draws them, S synthetic
captions, teacher-ensemble embeddings of the exactly replayed augmented images and of
the captions -> a DR store (and optionally DataCompDR-format WebDataset shards).

``mobileclip_fastload.reinforce(...)`` calls ``reinforce.api.reinforce``: this module is
callable. Names are imported on first use, so the CLI's ``--help`` stays fast.
"""

import importlib
import sys
import types

_EXPORTS = {
    "DATACOMPDR_TEACHERS": "api",
    "EXECUTORS": "api",
    "reinforce": "api",
    "draw_augmentations": "augmentation",
    "entry_seed": "augmentation",
    "Captioner": "captioners",
    "OpenClipCaptioner": "captioners",
    "OpenClipSpec": "open_clip_models",
    "ReinforceReport": "report",
    "ReinforceShardReport": "report",
    "Teacher": "teachers",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return self.reinforce(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
