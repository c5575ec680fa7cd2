"""The dual-stream semi-supervised training loop (paper §3.2), in one readable function.

Each step draws the supervised stream or the adversarial stream with equal probability. Supervised:
``lambda * L1 + (1 - lambda) * L_G``; adversarial: ``(1 - lambda) * L_G`` only. One generator and one
per-pixel discriminator serve both streams. The checkpoint holds model, discriminator, optimisers, step and
config, so ``train`` on the same run folder resumes from the file alone.

Rendered pairs (``harmcli render`` folders) join the supervised stream: a share ``rendered_fraction`` of each
supervised batch is drawn from them; they get the reconstruction term only (the per-pixel discriminator judges
photos). With ``cross_domain`` they run through the model's rendered branch and eq. 6 of the second paper is
added: the domain discriminator's term on rendered features, the style cross-entropies on renders and the
style-aggregation loss on photos (both streams). Validation runs on the photo and the rendered held-out pairs
separately, always through the photo branch (what ships); only the photo numbers pick ``best``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from harmcli.errors import DatasetError, HarmcliError
from harmcli.models import PRESETS, create_model
from harmcli.models.cross_domain import DomainDiscriminator, StyleClassifier
from harmcli.models.discriminator import UNetDiscriminator
from harmcli.ops.compose import apply_adjustment_torch
from harmcli.train.config import TrainConfig
from harmcli.train.data import Batch, TrainingData, augment
from harmcli.train.losses import (
    AdversarialLoss,
    DomainAdversarialLoss,
    entropy_reduction,
    masked_l1,
    soft_cross_entropy,
    weighted_classification,
)
from harmcli.weights import load_weights, save_weights

CHECKPOINT = "checkpoint.pt"
BEST = "best.safetensors"
# best.safetensors is the model with the lowest sum of two foreground errors on the validation split: on the
# composites (how well it harmonizes) and on their target photos given as input (how little it changes a
# photo that needs nothing). Either alone rewards a degenerate model.
BEST_CRITERION = "val_fMSE + val_fMSE_real_photo"
LAST = "last.safetensors"


@dataclass
class RunPaths:
    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def config(self) -> Path:
        return self.root / "config.json"


def harmonize_batch(model, batch: Batch) -> torch.Tensor:
    curve_y, shading = model(batch.composite, batch.background, batch.mask)
    return apply_adjustment_torch(batch.composite, batch.mask, curve_y, shading)


def harmonize_with_features(model, batch: Batch, domain: str) -> tuple[torch.Tensor, dict]:
    """The harmonized batch and the cross-domain features (f_in, f_out) of the ``domain`` branch."""
    curve_y, shading, features = model(batch.composite, batch.background, batch.mask, domain=domain, return_features=True)
    return apply_adjustment_torch(batch.composite, batch.mask, curve_y, shading), features


def foreground_mse_255(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image fMSE on the 0-255 scale (the field's definition), mask-weighted."""
    err = ((output - target) * 255.0) ** 2 * mask
    return err.sum((1, 2, 3)) / (mask.sum((1, 2, 3)) * 3).clamp_min(1.0)


@torch.no_grad()
def validate(model, data: TrainingData, limit: int, batch_size: int = 16, key: str = "val") -> dict:
    """fMSE, MSE and PSNR (0-255 scale) of the model and of the untouched composite on the held-out pairs of
    ``key`` (``val``: photos; ``val_rendered``: renders, keys prefixed ``val_rendered_``); ``limit`` 0 = all."""
    n = data.count(key) if not limit else min(data.count(key), limit)
    if n == 0:
        return {}
    # A limited validation takes pairs spread evenly over the whole list, not its head: the list is in folder
    # and manifest order, so the first N would all be one folder's first kind of mismatch.
    chosen = torch.linspace(0, data.count(key) - 1, n).round().long()
    was_training = model.training
    model.eval()
    fmse, fmse_in, fmse_real, mse = [], [], [], []
    for start in range(0, n, batch_size):
        idx = chosen[start : start + batch_size]
        batch = data.batch(key, idx)
        out = harmonize_batch(model, batch)
        fmse.append(foreground_mse_255(out, batch.target, batch.mask))
        fmse_in.append(foreground_mse_255(batch.composite, batch.target, batch.mask))
        mse.append((((out - batch.target) * 255) ** 2).mean((1, 2, 3)))
        # The target photo itself as input: a good model leaves it (nearly) unchanged.
        real = Batch(batch.target, batch.background, batch.mask, batch.target)
        fmse_real.append(foreground_mse_255(harmonize_batch(model, real), batch.target, batch.mask))
    model.train(was_training)
    fmse_t, mse_t = torch.cat(fmse), torch.cat(mse)
    psnr = (10 * torch.log10(255.0**2 / mse_t.clamp_min(1e-10))).clamp(max=100)
    values = {
        "fMSE": float(fmse_t.mean()),
        "fMSE_composite": float(torch.cat(fmse_in).mean()),
        "fMSE_real_photo": float(torch.cat(fmse_real).mean()),
        "MSE": float(mse_t.mean()),
        "PSNR": float(psnr.mean()),
        "count": n,
    }
    return {f"{key}_{name}": value for name, value in values.items()}


def lr_factor(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int, elapsed_s: float) -> float:
    """Learning-rate multiplier: linear warm-up, then the paper's step decay or a cosine over the budget.

    The cosine follows whichever runs out first, steps or minutes, so a time-limited run still ends at a low rate.
    """
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    if config.schedule == "cosine":
        progress = step / max(1, total_steps)
        if config.max_minutes:
            progress = max(progress, elapsed_s / (60 * config.max_minutes))
        return warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
    return warm * config.lr_decay ** ((step // steps_per_epoch) // config.lr_decay_every)


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


_CHECKPOINT_KEYS = ("model", "discriminator", "opt_g", "opt_d", "step", "config")
# Present only when the run uses them: the cross-domain parts and the weight average.
_OPTIONAL_KEYS = ("cross_domain", "opt_x", "ema")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _load_checkpoint(path: Path) -> dict:
    """The state saved by :func:`train`; a truncated, corrupt or foreign file is one clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        # torch's own message runs to many lines of internals (zip central directory, unpickler opcodes).
        raise HarmcliError(
            f"{path}: not a readable checkpoint (truncated or corrupt); move it away to start afresh"
        ) from None
    missing = [key for key in _CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise HarmcliError(
            f"{path}: not a harmcli training checkpoint (no {', '.join(missing)}); move it away to start afresh"
        )
    return state


def train(
    data_folders: list[Path],
    run_dir: Path,
    config: TrainConfig,
    *,
    on_event: Callable[[str, dict], None] | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """Train (or resume) into ``run_dir``. ``on_event(kind, record)`` receives 'resume', 'data', 'step',
    'val' and 'done' events for display. ``cache_dir``: where the decoded data is kept between runs (see
    ``ImagePool``); not a training setting, so not saved in the run. Returns the final record."""
    emit = on_event or (lambda kind, record: None)
    paths = RunPaths(Path(run_dir))
    if paths.root.exists() and not paths.root.is_dir():
        raise HarmcliError(f"{paths.root}: is a file; -o names the run folder (new, or one to resume)")
    for folder in data_folders:
        if not Path(folder).is_dir():
            what = "no such folder" if not Path(folder).exists() else "is a file, not a training folder"
            raise DatasetError(f"{folder}: {what}")
    if config.threads:
        torch.set_num_threads(config.threads)

    resume_state = None
    if paths.checkpoint.is_file():
        resume_state = _load_checkpoint(paths.checkpoint)
        saved = TrainConfig.from_dict(resume_state["config"])
        # The schedule, data and architecture come from the checkpoint; only limits may change on resume, and the
        # CPU threads, which belong to the machine the run goes on on, not to the run.
        limits = {"max_steps": config.max_steps, "max_minutes": config.max_minutes, "threads": config.threads}
        ignored = {k: v for k, v in config.to_dict().items() if k not in limits and v != getattr(saved, k)}
        config = TrainConfig.from_dict({**saved.to_dict(), **limits})
        record = {"step": resume_state["step"], "checkpoint": str(paths.checkpoint)}
        if ignored:  # said out loud: a changed --lr that silently does nothing would mislead
            record["ignored"] = {k: {"given": v, "kept": getattr(saved, k)} for k, v in ignored.items()}
        emit("resume", record)

    # A bad --init file fails now, before minutes of data loading.
    start_from = load_weights(config.init_weights) if config.init_weights and resume_state is None else None
    if start_from is not None and start_from.config.name != config.model:
        raise HarmcliError(f"{config.init_weights}: holds model '{start_from.config.name}', but this run trains '{config.model}'")

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + (resume_state["step"] if resume_state else 0))
    data = TrainingData.from_folders(
        data_folders, config.size, on_progress=lambda d, t: emit("loading", {"done": d, "total": t}), cache_dir=cache_dir
    )
    counts = {k: data.count(k) for k in ("supervised", "adversarial", "real", "val")}
    if data.count("rendered") or data.count("val_rendered"):
        counts.update(rendered=data.count("rendered"), val_rendered=data.count("val_rendered"))
    use_rendered = counts.get("rendered", 0) > 0 and config.rendered_fraction > 0 and config.supervised
    use_sup = config.supervised and (counts["supervised"] > 0 or use_rendered)
    use_adv = config.adversarial and counts["real"] > 0
    if not use_sup and not (use_adv and counts["adversarial"] > 0):
        raise DatasetError(f"nothing to train on: {counts} (supervised needs targets; adversarial needs real samples)")
    cross = config.cross_domain
    if cross and not use_rendered:
        raise DatasetError(f"--cross-domain needs rendered pairs ('harmcli render' folders) among the data: {counts}")
    if cross and not data.has_styles("rendered"):
        raise DatasetError("--cross-domain needs a style_label on every rendered sample's manifest line")
    adv_stream = use_adv and counts["adversarial"] > 0
    emit("data", counts)  # after the checks: a refused run prints its one error line, which names the counts
    # Only now, with the data read, does the run folder appear: a run that cannot start leaves nothing behind.
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(json.dumps({**config.to_dict(), "data": [str(f) for f in data_folders]}, indent=2))

    cross_options = {"cross_domain": True, "domain_blocks": config.domain_blocks} if cross else {}
    if start_from is not None and cross:
        # The file holds the photo branch; the rendered branch starts as its copy.
        model = create_model(start_from.config, options={**start_from.config.options, **cross_options})
        model.load_state_dict(start_from.state_dict(), strict=False)
        model.sync_rendered_branch()
    elif start_from is not None:
        model = start_from  # already the right preset, built from the file's own config
    else:
        options = {**PRESETS[config.model].options, **cross_options}
        model = create_model(config.model, pretrained_backbone=config.pretrained_backbone and resume_state is None, options=options)
    model.train()
    discriminator = UNetDiscriminator()
    adversarial = AdversarialLoss(discriminator)
    # The style classifiers are part of the generator's objective (eq. 6), so the generator's optimiser moves them.
    style = torch.nn.ModuleDict(
        {"p_in": StyleClassifier(2 * model.domain_channels), "p_out": StyleClassifier(model.pooled_channels)}
    ) if cross else None
    domain_critic = DomainDiscriminator(model.domain_channels) if cross else None
    domain_adv = DomainAdversarialLoss(domain_critic) if cross else None
    opt_g = torch.optim.Adam(list(model.parameters()) + (list(style.parameters()) if cross else []), lr=config.lr)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=(0.5, 0.999))
    opt_x = torch.optim.Adam(domain_critic.parameters(), lr=config.lr_discriminator, betas=(0.5, 0.999)) if cross else None
    ema = None
    step, best = 0, math.inf
    if resume_state is not None:
        try:
            model.load_state_dict(resume_state["model"])
            discriminator.load_state_dict(resume_state["discriminator"])
            opt_g.load_state_dict(resume_state["opt_g"])
            opt_d.load_state_dict(resume_state["opt_d"])
            if cross:
                style.load_state_dict(resume_state["cross_domain"]["style"])
                domain_critic.load_state_dict(resume_state["cross_domain"]["critic"])
                opt_x.load_state_dict(resume_state["opt_x"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise HarmcliError(
                f"{paths.checkpoint}: does not fit model '{config.model}' ({_first_line(exc)}); move it away to start afresh"
            ) from None
        step = resume_state["step"]
        # A checkpoint that ranked by another criterion starts the ranking afresh.
        if resume_state.get("best_criterion") == BEST_CRITERION:
            best = resume_state.get("best", math.inf)
    if config.pretrained_backbone and hasattr(model, "freeze_backbone_norm"):
        model.freeze_backbone_norm()
    if config.ema_decay:
        ema = copy.deepcopy(model).eval().requires_grad_(False)
        if resume_state is not None and resume_state.get("ema") is not None:
            ema.load_state_dict(resume_state["ema"])
    # What validation and the saved weights use: the average when there is one.
    shipped = ema if ema is not None else model

    epoch_size = max(counts["supervised"] + counts.get("rendered", 0) + (counts["adversarial"] if adv_stream else 0), config.batch_size)
    steps_per_epoch = max(1, epoch_size // config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    info = {"recipe": config.to_dict(), "data": [str(f) for f in data_folders], "counts": counts}

    def checkpoint():
        state = {
            "model": model.state_dict(), "discriminator": discriminator.state_dict(), "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(), "step": step, "best": best, "best_criterion": BEST_CRITERION, "config": config.to_dict(),
            "elapsed_s": elapsed_before + time.monotonic() - start_time,
        }
        if cross:
            state["cross_domain"] = {"style": style.state_dict(), "critic": domain_critic.state_dict()}
            state["opt_x"] = opt_x.state_dict()
        if ema is not None:
            state["ema"] = ema.state_dict()
        _save_checkpoint(paths.checkpoint, state)
        save_weights(shipped, paths.root / LAST, info={**info, "step": step})

    def run_validation():
        nonlocal best
        record = {"step": step, **validate(shipped, data, config.val_limit)}
        if data.count("val_rendered"):
            record.update(validate(shipped, data, config.val_limit, key="val_rendered"))
        score = record.get("val_fMSE", math.inf) + record.get("val_fMSE_real_photo", 0.0)
        if score < best:
            best = score
            save_weights(shipped, paths.root / BEST, info={**info, "step": step, "validation": record})
            record["best"] = True
        with open(paths.log, "a") as log:
            log.write(json.dumps({"event": "val", **record}) + "\n")
        emit("val", record)

    def update_ema():
        # The usual warm-up (1 + t) / (10 + t): an average of the first, untrained steps would lag for thousands of steps.
        decay = min(config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for averaged, current in zip(ema.parameters(), model.parameters()):
                averaged.lerp_(current, 1 - decay)
            for averaged, current in zip(ema.buffers(), model.buffers()):
                averaged.copy_(current)

    def batch_parts(stream: str) -> list[tuple[str, Batch]]:
        """The step's batch as (domain, batch) parts: photos of ``stream``, and for supervised steps a share of
        rendered pairs (each sample independently with probability rendered_fraction)."""
        n_rendered = 0
        if stream == "supervised" and use_rendered:
            if counts["supervised"] == 0:
                n_rendered = config.batch_size
            else:
                n_rendered = int((torch.rand(config.batch_size, generator=generator) < config.rendered_fraction).sum())
        parts = []
        for domain, key, n in (("photo", stream, config.batch_size - n_rendered), ("rendered", "rendered", n_rendered)):
            if n:
                parts.append((domain, augment(data.sample(key, n, generator), generator, brightness_stops=config.brightness_jitter,
                                              background_is_composite=config.background_is_composite,
                                              identity_fraction=config.identity_fraction,
                                              # renders keep their colours: their lighting style is a label
                                              global_stops=config.global_jitter if domain == "photo" else 0.0,
                                              crop_min_scale=config.crop_min_scale)))
        return parts

    start_time, window = time.monotonic(), []
    elapsed_before = resume_state.get("elapsed_s", 0.0) if resume_state else 0.0
    # --max-steps and --max-minutes are totals for the run, across resumes.
    deadline = start_time + config.max_minutes * 60 - elapsed_before if config.max_minutes else math.inf
    reason = "finished schedule"
    while step < total_steps:
        if time.monotonic() > deadline:
            reason = "time limit"
            break
        factor = lr_factor(config, step, total_steps, steps_per_epoch, elapsed_before + time.monotonic() - start_time)
        for opt, lr in ((opt_g, config.lr), (opt_d, config.lr_discriminator), (opt_x, config.lr_discriminator)):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = lr * factor

        gan_on = use_adv and step >= config.adversarial_start
        # Equal odds for the two streams once the GAN terms are on; before that only the supervised stream has a loss.
        supervised_step = use_sup and (not adv_stream or not gan_on or torch.rand(1, generator=generator).item() < 0.5)
        stream = "supervised" if supervised_step else "adversarial"
        record = {"step": step + 1, "stream": stream}
        loss = torch.zeros(())
        photo_out = photo_batch = None
        features = {}
        for domain, batch in batch_parts(stream):
            branch = domain if cross else "photo"
            if cross:
                output, features[domain] = harmonize_with_features(model, batch, branch)
            else:
                output = harmonize_batch(model, batch)
            share = batch.composite.shape[0] / config.batch_size
            if supervised_step:
                # Eq. 2 of both papers: each domain's reconstruction, weighted by its share of the batch.
                rec = masked_l1(output, batch.target, batch.mask)
                loss = loss + config.lambda_rec * share * rec
                record["loss_l1" if domain == "photo" else "loss_l1_rendered"] = float(rec.detach())
            if domain == "photo":
                photo_out, photo_batch = output, batch
                if gan_on:  # the per-pixel discriminator knows photos only: renders get no L_G
                    for p in discriminator.parameters():
                        p.requires_grad_(False)
                    g_loss, metrics = adversarial.generator_loss(output, batch.mask)
                    for p in discriminator.parameters():
                        p.requires_grad_(True)
                    loss = loss + (1 - config.lambda_rec) * share * g_loss
                    record.update(metrics)
            if cross:
                f = features[domain]
                logits_in, logits_out = style["p_in"](f["f_in"], batch.mask), style["p_out"](f["f_out"])
                if domain == "rendered":
                    for p in domain_critic.parameters():
                        p.requires_grad_(False)
                    g_domain, metrics = domain_adv.generator_loss(f["f_in"])
                    for p in domain_critic.parameters():
                        p.requires_grad_(True)
                    style_in = soft_cross_entropy(logits_in, batch.style_in)
                    style_out = soft_cross_entropy(logits_out, batch.style_out)
                    loss = loss + config.lambda_domain * g_domain + config.lambda_style_rendered * (style_in + style_out)
                    record.update(metrics, loss_style_in=float(style_in.detach()), loss_style_out=float(style_out.detach()))
                else:
                    weighted = weighted_classification(logits_in, logits_out)
                    reduction = entropy_reduction(logits_in, logits_out, config.entropy_margin)
                    loss = loss + config.lambda_style_photo * (weighted + reduction)
                    record.update(loss_style_w=float(weighted.detach()), loss_style_er=float(reduction.detach()))
        if loss.requires_grad:
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            if ema is not None:
                update_ema()
        if gan_on and photo_out is not None:
            real = data.sample("real", config.batch_size, generator)
            # The discriminator's real photos get the generator's inputs' global looks, or a global cast would
            # tell it which is which without saying anything about harmony.
            real = augment(real, generator, brightness_stops=0.0, background_is_composite=0.0, global_stops=config.global_jitter,
                           crop_min_scale=config.crop_min_scale)
            d_loss, metrics = adversarial.discriminator_loss(real.composite, photo_out.detach(), photo_batch.mask)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            record.update(metrics)
        if cross and "photo" in features and "rendered" in features:
            x_loss, metrics = domain_adv.discriminator_loss(features["photo"]["f_in"], features["rendered"]["f_in"])
            opt_x.zero_grad(set_to_none=True)
            x_loss.backward()
            opt_x.step()
            record.update(metrics)
        step += 1
        record["lr"] = config.lr * factor
        record["elapsed_min"] = round((time.monotonic() - start_time) / 60, 2)
        window.append(record)
        if step % 10 == 0:
            with open(paths.log, "a") as log:
                for r in window:
                    log.write(json.dumps(r) + "\n")
            window.clear()
        emit("step", {**record, "total": total_steps})
        if step % config.checkpoint_every == 0:
            checkpoint()
        if step % config.val_every == 0:
            run_validation()

    if window:  # the last steps since the previous flush
        with open(paths.log, "a") as log:
            for r in window:
                log.write(json.dumps(r) + "\n")
    checkpoint()
    run_validation()
    # Without validation samples there is no "best": only last.safetensors exists.
    best_path = paths.root / BEST
    final = {
        "step": step, "reason": reason, "best_score": best,
        "best": str(best_path) if best_path.is_file() else None, "last": str(paths.root / LAST),
    }
    emit("done", final)
    return final
