"""Checkpoints go through the project's one atomic writer: a save that fails leaves the previous
checkpoint as it was and no temporary file behind."""

from __future__ import annotations

import os
import threading

import pytest
import torch
from mobileclip_fastload_train.checkpoint import LATEST, load_checkpoint, save_checkpoint


def test_a_checkpoint_round_trips_and_leaves_only_itself(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", {"step": 3, "w": torch.arange(4.0)})
    assert path == tmp_path / "ckpt" / LATEST
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and torch.equal(loaded["w"], torch.arange(4.0))
    assert os.listdir(tmp_path / "ckpt") == [LATEST]


def test_a_failed_save_keeps_the_previous_checkpoint_and_no_temporary(tmp_path):
    save_checkpoint(tmp_path, {"step": 1})
    with pytest.raises(TypeError, match="pickle"):
        save_checkpoint(tmp_path, {"step": 2, "unpicklable": threading.Lock()})
    assert load_checkpoint(tmp_path / LATEST) == {"step": 1}
    assert os.listdir(tmp_path) == [LATEST]
