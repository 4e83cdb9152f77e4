"""Reinforced (multi-modal knowledge distillation) training of MobileCLIP models.

Subpackages/modules: ``models`` (MCi/MCt/base encoders), ``loss`` (CLIP +
ensemble distillation), ``train`` (the loop), ``evaluate`` (zero-shot and
retrieval), ``experiments`` (small-scale reproductions).
"""
