"""One place that knows every preset: ``create_model(name)`` builds any of them from a small config."""

from __future__ import annotations

from dataclasses import replace

from harmcli.errors import UsageError
from harmcli.models.base import HarmonizationNet, ModelConfig

PRESETS: dict[str, ModelConfig] = {
    # lite trains and runs at 256: the training photos are 256 px, and the network is 4x cheaper than at 512
    # (the model card reports quality at both sizes).
    "lite": ModelConfig(name="lite", low_res=256, options={"decoder_width": 64, "head_width": 256}),
    "paper": ModelConfig(name="paper", low_res=512),
}


def _builder(name: str):
    if name == "lite":
        from harmcli.models.lite import LiteHarmonizer

        return LiteHarmonizer
    if name == "paper":
        from harmcli.models.paper import PaperHarmonizer

        return PaperHarmonizer
    raise UsageError(f"unknown model '{name}'; choose one of: {', '.join(PRESETS)}")


def create_model(name: str | ModelConfig, *, pretrained_backbone: bool = False, **overrides) -> HarmonizationNet:
    """Build a network from a preset name (or a full config), with optional config field overrides.

    ``pretrained_backbone`` loads ImageNet weights into the encoder where the preset has them; inference never
    needs it because a weights file carries everything.
    """
    if isinstance(name, ModelConfig):
        config = name
    else:
        if name not in PRESETS:
            raise UsageError(f"unknown model '{name}'; choose one of: {', '.join(PRESETS)}")
        config = PRESETS[name]
    if overrides:
        config = replace(config, **overrides)
    if config.options.get("cross_domain") and config.name != "lite":
        raise UsageError(f"cross-domain training is built for the lite model, not '{config.name}'")
    model = _builder(config.name)(config)
    if pretrained_backbone:
        model.load_pretrained_backbone()
    return model
