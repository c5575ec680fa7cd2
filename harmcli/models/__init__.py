"""The networks, shared by training and inference. Build every variant through :func:`create_model`."""

from __future__ import annotations

from harmcli.models.base import HarmonizationNet, ModelConfig
from harmcli.models.registry import PRESETS, create_model

__all__ = ["HarmonizationNet", "ModelConfig", "PRESETS", "create_model"]
