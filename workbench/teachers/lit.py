"""LiT-style teachers: frozen pretrained towers, trained projections and logit scale.

Fitting never runs a tower twice on the same input: tower features of every training image (several
stored views) and caption are computed once, in resumable chunks, into the stage cache — and shared by
teachers with the same tower (lite0-minilm and lite1-minilm share their MiniLM text features). The
projections then train on those features in seconds per thousand steps.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from workbench.augment.crop import apply_crop, sample_crop_params
from workbench.data.arrays import load_training_arrays
from workbench.stages.cache import StageCache
from workbench.stages.progress import progress_bar
from workbench.stages.registry import register_stage
from workbench.teachers.towers import EfficientNetLiteTower, MiniLMTower
from workbench.train.loop import check_finite, lr_at, set_lr
from workbench.train.loss import clip_loss
from workbench.workspace import Workspace

if TYPE_CHECKING:
    from workbench.teachers.kinds.lit import LitTeacherSpec

FEATURES = register_stage("features", version=2)  # 2: channels-last towers
CHUNK = 2048
CROP_RATIO = (3 / 4, 4 / 3)


class Projection(torch.nn.Sequential):
    """Tower features → shared embedding space: an MLP (or linear when ``hidden`` is 0)."""

    def __init__(self, dim_in: int, dim_out: int, hidden: int):
        layers = ([torch.nn.Linear(dim_in, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, dim_out)] if hidden
                  else [torch.nn.Linear(dim_in, dim_out)])
        super().__init__(torch.nn.LayerNorm(dim_in), *layers)


class LitModel(torch.nn.Module):
    """Frozen image tower + the two trained projections and the logit scale (the text tower lives
    outside: sentence-transformers owns it)."""

    def __init__(self, spec: LitTeacherSpec, image_dim: int, text_dim: int):
        super().__init__()
        self.image_head = Projection(image_dim, spec.embed_dim, spec.hidden)
        self.text_head = Projection(text_dim, spec.embed_dim, spec.hidden)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))


class LitEncoder:
    """The fitted teacher as an ImageTextEncoder: pixels in [0, 1] and strings in, normalised embeddings out."""

    def __init__(self, spec: LitTeacherSpec, heads: LitModel, image_tower: EfficientNetLiteTower,
                 text_tower: MiniLMTower):
        self.spec, self.model, self.image_tower, self.text_tower = spec, heads, image_tower, text_tower
        self.image_size = spec.image_size

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.image_head(self.image_tower(pixels.float())), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return F.normalize(self.model.text_head(self.text_tower(texts)), dim=-1)


@dataclass
class TrainingPairs:
    images: np.ndarray   # uint8 [N, S, S, 3]
    captions: list[str]
    fingerprints: dict[str, str]


def load_pairs(spec: LitTeacherSpec, ws: Workspace, progress: bool) -> TrainingPairs:
    """The train splits of ``spec.data`` at the tower resolution (without the validation slice if
    ``spec.holdout``), capped by a seeded subset if asked."""
    images, captions, fingerprints = [], [], {}
    for name in spec.data:
        arrays = load_training_arrays(ws.dataset_dir(name), spec.image_size, spec.holdout, progress=progress)
        images.append(arrays.images)
        captions += arrays.captions
        fingerprints[name] = arrays.fingerprint
    stacked = np.concatenate(images) if len(images) > 1 else images[0]
    cap = spec.fit.max_train_samples
    if cap is not None and cap < len(captions):
        keep = np.sort(np.random.default_rng(spec.seed).permutation(len(captions))[:cap])
        stacked, captions = stacked[keep], [captions[i] for i in keep]
    return TrainingPairs(stacked, captions, fingerprints)


def cached_features(cache: StageCache, key: str, rows: int, chunks: Sequence[Callable[[int, int], torch.Tensor]],
                    desc: str, progress: bool) -> np.ndarray:
    """[len(chunks), rows, D] float16 features, computed chunk by chunk; a killed run resumes at its last chunk.

    ``chunks[v](start, stop)`` returns the features of rows ``start:stop`` for view ``v``.
    """
    partial = cache.partial_dir("features", key)

    def build(out: Path) -> None:
        partial.mkdir(parents=True, exist_ok=True)
        starts = range(0, rows, CHUNK)
        bar = progress_bar(total=len(chunks) * rows, desc=desc, unit=" items", enabled=progress)
        views = []
        for view, compute in enumerate(chunks):
            parts = []
            for start in starts:
                stop = min(rows, start + CHUNK)
                path = partial / f"view{view}-{start:08d}.npy"
                if not path.exists():
                    tmp = path.with_suffix(".tmp.npy")
                    np.save(tmp, compute(start, stop).numpy().astype(np.float16))
                    tmp.rename(path)
                parts.append(np.load(path))
                bar.update(stop - start)
            views.append(np.concatenate(parts))
        bar.close()
        np.save(out / "features.npy", np.stack(views))

    result = cache.get_or_build(FEATURES.name, key, build)
    return np.load(result.path / "features.npy", mmap_mode="r")


def _holdout(spec: LitTeacherSpec) -> dict:
    """Features of a holdout fit cover other rows: their own key (other fits keep theirs)."""
    return {"holdout": True} if spec.holdout else {}


def image_features(spec: LitTeacherSpec, tower: EfficientNetLiteTower, pairs: TrainingPairs, ws: Workspace,
                   progress: bool) -> np.ndarray:
    """[views, N, D]: view 0 is the whole image, the others seeded random crops."""
    fit = spec.fit
    config = {"tower": spec.image_tower, "size": spec.image_size, "views": fit.views, "crop_scale": fit.crop_scale,
              "seed": spec.seed, "max_train_samples": fit.max_train_samples} | _holdout(spec)
    key = FEATURES.key(config, pairs.fingerprints)
    size = spec.image_size

    def view_chunks(view: int) -> Callable[[int, int], torch.Tensor]:
        def compute(start: int, stop: int) -> torch.Tensor:
            batch = torch.from_numpy(np.array(pairs.images[start:stop]))  # a writable copy of the chunk
            if view == 0:
                pixels = batch.permute(0, 3, 1, 2).float().div_(255.0)
            else:
                generator = torch.Generator().manual_seed(spec.seed * 1_000_003 + view * 10_007 + start)
                params = sample_crop_params(len(batch), size, fit.crop_scale, CROP_RATIO, False, generator)
                pixels = apply_crop(batch, params, size)
            return tower(pixels)
        return compute

    return cached_features(StageCache(ws.cache_dir), key, len(pairs.captions),
                           [view_chunks(v) for v in range(fit.views)], f"{spec.image_tower} features", progress)


def text_features(spec: LitTeacherSpec, tower: MiniLMTower, pairs: TrainingPairs, ws: Workspace,
                  progress: bool) -> np.ndarray:
    """[N, D] caption features."""
    config = {"tower": spec.text_tower, "seed": spec.seed, "max_train_samples": spec.fit.max_train_samples}
    config |= _holdout(spec)
    key = FEATURES.key(config, pairs.fingerprints)
    features = cached_features(StageCache(ws.cache_dir), key, len(pairs.captions),
                               [lambda start, stop: tower(pairs.captions[start:stop])],
                               f"{spec.text_tower} features", progress)
    return features[0]


def fit_projections(spec: LitTeacherSpec, images: np.ndarray, texts: np.ndarray, progress: bool,
                    log: Callable[[dict[str, float], int], None]) -> tuple[LitModel, dict]:
    """Contrastive fit of the projections and logit scale on stored features (seeded, deterministic)."""
    fit = spec.fit
    torch.manual_seed(spec.seed)
    model = LitModel(spec, images.shape[-1], texts.shape[-1])
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": fit.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=fit.lr, betas=(0.9, 0.98))
    images_t, texts_t = torch.from_numpy(np.array(images)), torch.from_numpy(np.array(texts))  # in memory
    views, rows = images_t.shape[:2]
    batch = min(fit.batch_size, rows)
    generator = torch.Generator().manual_seed(spec.seed)
    started, loss_value = time.perf_counter(), float("nan")
    for step in progress_bar(range(fit.steps), desc="fit projections", enabled=progress, leave=False):
        set_lr(optimizer, lr_at(step, fit))
        index = torch.randperm(rows, generator=generator)[:batch]
        view = torch.randint(views, (batch,), generator=generator)
        image_emb = F.normalize(model.image_head(images_t[view, index].float()), dim=-1)
        text_emb = F.normalize(model.text_head(texts_t[index].float()), dim=-1)
        loss = clip_loss(image_emb, text_emb, model.logit_scale.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        loss_value = float(loss.detach())
        check_finite(loss_value, f"teacher fit diverged at step {step} (loss {loss_value}); lower fit.lr")
        if (step + 1) % 100 == 0 or step + 1 == fit.steps:
            log({"fit/loss": loss_value, "fit/logit_scale": float(model.logit_scale.detach().exp()),
                 "fit/lr": lr_at(step, fit)}, step + 1)
    model.eval()
    return model, {"final_loss": loss_value, "fit_seconds": round(time.perf_counter() - started, 1),
                   "train_pairs": rows, "views": views}


def fit_lit_teacher(spec: LitTeacherSpec, ws: Workspace, out: Path, progress: bool,
                    log: Callable[[dict[str, float], int], None]) -> dict:
    """Features (cached) → projections → ``heads.pt`` in ``out``. Returns a summary."""
    started = time.perf_counter()
    pairs = load_pairs(spec, ws, progress)
    image_tower, text_tower = EfficientNetLiteTower(spec.image_tower), MiniLMTower(spec.text_tower)
    t0 = time.perf_counter()
    images = image_features(spec, image_tower, pairs, ws, progress)
    texts = text_features(spec, text_tower, pairs, ws, progress)
    feature_seconds = time.perf_counter() - t0
    heads, summary = fit_projections(spec, images, texts, progress, log)
    torch.save({"heads": heads.state_dict(), "image_dim": images.shape[-1], "text_dim": texts.shape[-1]},
               out / "heads.pt")
    summary.update(feature_seconds=round(feature_seconds, 1), total_seconds=round(time.perf_counter() - started, 1),
                   logit_scale=float(heads.logit_scale.detach().exp()))
    (out / "fit.json").write_text(json.dumps(summary, indent=2))
    return summary


def load_lit_teacher(spec: LitTeacherSpec, artifact: Path) -> LitEncoder:
    state = torch.load(artifact / "heads.pt", map_location="cpu", weights_only=True)
    heads = LitModel(spec, state["image_dim"], state["text_dim"])
    heads.load_state_dict(state["heads"])
    heads.eval()
    return LitEncoder(spec, heads, EfficientNetLiteTower(spec.image_tower), MiniLMTower(spec.text_tower))
