"""MobileCLIP models: MCi image encoders (timm), MCt and base text encoders."""

from training.models.clip import CLIPModel, Preprocess
from training.models.factory import create_model, list_models
from training.models.mct import MCt, MCtConfig
from training.models.reparam import reparameterize

__all__ = ["CLIPModel", "MCt", "MCtConfig", "Preprocess", "create_model", "list_models", "reparameterize"]
