"""MobileCLIP models: MCi image encoders (timm), MCt and base text encoders."""

from mobileclip_fastload_train.models.clip import CLIPModel, Preprocess
from mobileclip_fastload_train.models.factory import create_model, list_models
from mobileclip_fastload_train.models.mct import MCt, MCtConfig
from mobileclip_fastload_train.models.reparam import reparameterize

__all__ = ["CLIPModel", "MCt", "MCtConfig", "Preprocess", "create_model", "list_models", "reparameterize"]
