"""Training configuration: a dataclass per run, with named recipes; the resolved config is saved in the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from harmcli.errors import UsageError


@dataclass(frozen=True)
class TrainConfig:
    model: str = "lite"
    size: int = 256  # training resolution (square)
    batch_size: int = 8
    lr: float = 4e-5
    lr_discriminator: float = 4e-5
    schedule: str = "step"  # "step": x lr_decay every lr_decay_every epochs (paper); "cosine": over the run's budget
    lr_decay: float = 0.2  # multiply the learning rates by this ...
    lr_decay_every: int = 20  # ... every this many epochs (paper)
    warmup_steps: int = 0  # linear learning-rate warm-up: the heads start at zero and Adam's first steps are large
    epochs: int = 80
    max_steps: int | None = None
    max_minutes: float | None = None
    lambda_rec: float = 0.92  # lambda in  lambda * L1 + (1 - lambda) * L_G  (paper eq. 2)
    supervised: bool = True
    adversarial: bool = True
    adversarial_start: int = 0  # supervised-only warm-up steps before the GAN terms switch on
    brightness_jitter: float = 0.3  # random foreground exposure change, in stops (paper: on-the-fly brightness)
    background_is_composite: float = 0.3  # probability of feeding the composite as the background input
    # Global photometric jitter, in stops: each photo-domain sample (composite, background and target alike) gets
    # one random exposure, white balance and gamma. A fore/background mismatch survives it, and a coherent photo
    # stays coherent, so the answer does not change; what changes is that a photo can no longer be recognised by
    # its exact colours (held-out coherent photos got curves with 2-3x the spread of training ones: memorised).
    global_jitter: float = 0.0
    # Random crops: each sample cut to a side of crop_min_scale..1 of the frame (foreground kept in) and scaled back,
    # the discriminator's real photos too, so that upscaling softness does not tell them apart. 1 = off.
    crop_min_scale: float = 1.0
    # Share of supervised samples shown as their (coherent) target photo, with the target itself as the answer:
    # without them the network "corrects" real photos that need nothing.
    identity_fraction: float = 0.15
    pretrained_backbone: bool = True
    # A weights file to start the generator from (fine-tuning shipped or earlier weights); the discriminator
    # and the optimisers start afresh. Only read when a run starts, not on resume.
    init_weights: str | None = None
    # Rendered pairs (``harmcli render`` folders) next to the photos: the share of each supervised batch drawn
    # from them when any are given. A quarter keeps photos, the domain we ship for, the bulk of every batch.
    rendered_fraction: float = 0.25
    # The second paper's cross-domain network (domain-specific first stage and last head layers, a domain
    # discriminator, style classifiers) and the weights of its terms in eq. 6. The reconstruction terms keep
    # lambda_rec. The defaults put each auxiliary term at a fraction of the reconstruction term. Measured at the
    # first steps of a lite run on lalonde composites + a 'harmcli render' folder: photo L1 0.13-0.16 (x 0.92),
    # the style cross-entropies 1.9-3.1 each, the style aggregation 2.6 + 0.2, the critic's -D 0.35-0.6. With
    # 0.01 the style terms add about 0.05 and 0.03 and the critic term under 0.01 against about 0.12 of L1: enough
    # to shape the features, not enough for the classifiers rather than harmonization to drive the shared
    # encoder. The paper's own values (in its supplementary) are not available to us; the ablation measures them.
    cross_domain: bool = False
    domain_blocks: int = 3  # stem + 3 MBConv blocks: the paper's "first 4 layers"
    lambda_domain: float = 0.01  # lambda_adv: the domain discriminator's generator term (eq. 1)
    lambda_style_rendered: float = 0.01  # lambda_sty^rd: P_in and P_out cross-entropy on renders (eq. 3)
    lambda_style_photo: float = 0.01  # lambda_sty^rl: style aggregation on photos (eqs. 4 + 5)
    # Margin m of eq. 5, in nats: the output's style entropy must be this much below the input's. 0.1 is small
    # next to the ln 10 = 2.3 nats of a uniform distribution, so it asks for a trend, not for certainty.
    entropy_margin: float = 0.1
    # Exponential moving average of the generator's weights (e.g. 0.999); validation and the saved weights use
    # the average. None: off.
    ema_decay: float | None = None
    val_every: int = 250
    val_limit: int = 256  # held-out pairs per validation; 0 = all of them
    checkpoint_every: int = 100
    seed: int = 0
    threads: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


RECIPES: dict[str, TrainConfig] = {
    # The paper's schedule: Adam lr 4e-5, x0.2 every 20 epochs, 80 epochs, batch 8, at 512 px.
    "paper": TrainConfig(model="paper", size=512, batch_size=8, lr=4e-5, lr_discriminator=4e-5, epochs=80, lr_decay_every=20),
    # What a 2-core CPU does in about two hours: the ImageNet-initialised lite model at 256 px, a higher
    # learning rate with warm-up and a cosine decay over the time budget (far fewer steps than the paper), and a
    # short supervised-only start so that the discriminator first sees sensible outputs.
    "lite": TrainConfig(
        model="lite", size=256, batch_size=8, lr=1.5e-4, lr_discriminator=1e-4, epochs=10, schedule="cosine",
        warmup_steps=100, adversarial_start=300, max_minutes=110,
    ),
}


def resolve_config(recipe: str, **overrides) -> TrainConfig:
    """A recipe with command-line overrides applied (``None`` values mean "not given")."""
    if recipe not in RECIPES:
        raise UsageError(f"unknown recipe '{recipe}' (choose from {', '.join(RECIPES)})")
    given = {k: v for k, v in overrides.items() if v is not None}
    config = replace(RECIPES[recipe], **given)
    from harmcli.models.registry import PRESETS

    # Checked here, before any data is read or a run folder is made.
    if config.model not in PRESETS:
        raise UsageError(f"unknown model '{config.model}'; choose one of: {', '.join(PRESETS)}")
    return config
