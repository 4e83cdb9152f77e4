"""Dataset reinforcement (MobileCLIP, arXiv 2311.17049, section 3; REFERENCE.md sections 1-4, 8):
plain image-text pairs -> J augmentations drawn as torchvision draws them, S synthetic
captions, teacher-ensemble embeddings of the exactly replayed augmented images and of
the captions -> a DR store (and optionally DataCompDR-format WebDataset shards).

``mobileclip_fastload.reinforce(...)`` calls ``reinforce.api.reinforce``: this module is callable."""

import sys
import types

from mobileclip_fastload.reinforce.api import DATACOMPDR_TEACHERS, EXECUTORS, reinforce
from mobileclip_fastload.reinforce.augmentation import draw_augmentations, entry_seed
from mobileclip_fastload.reinforce.captioners import Captioner, OpenClipCaptioner
from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec
from mobileclip_fastload.reinforce.report import ReinforceReport, ReinforceShardReport
from mobileclip_fastload.reinforce.teachers import Teacher

__all__ = [
    "DATACOMPDR_TEACHERS",
    "EXECUTORS",
    "Captioner",
    "OpenClipCaptioner",
    "OpenClipSpec",
    "ReinforceReport",
    "ReinforceShardReport",
    "Teacher",
    "draw_augmentations",
    "entry_seed",
    "reinforce",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return reinforce(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
