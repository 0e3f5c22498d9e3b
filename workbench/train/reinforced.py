"""A reinforced dataset in memory, and the batch stream that replays it for a student.

Per sample and step: one stored augmentation (random, or epoch mod K) replayed at the student's
resolution from the student's own decoded copy of the image (released shards: the shard's own image at
its own size, whose pixels the stored crop boxes are in), the matching stored teacher image
embeddings (the distilled teachers' blocks only), the ground-truth caption with its teacher text
embeddings, and one synthetic caption (from the chosen captioners, among the first n stored) with
its teacher embeddings. As in ``data.BatchStream``, batch ``step`` is a pure function of (seed, step).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from workbench.augment.policy import AugmentPolicy, AugParams, apply, decompress
from workbench.config.recipe import Recipe
from workbench.data.arrays import load_training_arrays
from workbench.data.reinforced.dataset import ReinforcedDataset
from workbench.data.reinforced.shards import ReinforcedSample, syn_key
from workbench.train.data import EpochOrder, _generator, capped_rows, tokenize_all
from workbench.workspace import Workspace


@dataclass
class ReinforcedSet:
    images: torch.Tensor          # uint8 [N, L, L, 3] at the student's load size (or the source size)
    source_size: int
    reference_size: int
    policy: AugmentPolicy
    params: AugParams             # N·K rows: row n·K + k is augmentation k of sample n
    augmentations: int
    image_emb: torch.Tensor       # fp16 [N, K, D] — the distilled teachers' blocks, concatenated
    text_emb: torch.Tensor        # fp16 [N, D] ground truth
    tokens: torch.Tensor          # [N, context] ground truth
    captions: list[str]
    syn_emb: torch.Tensor         # fp16 [N, C·n, D] synthetic, captioner-major
    syn_tokens: torch.Tensor      # [N, C·n, context]
    syn_texts: list[list[str]]
    syn_valid: torch.Tensor       # bool [N, C·n]: that caption exists (duplicates were dropped)
    dims: list[int]               # width of each distilled teacher's block
    teacher_scales: list[float]   # each distilled teacher's own trained logit scale
    originals: list[torch.Tensor] | None = None
    """Released shards: each image, uint8 [H, W, 3] at its own size (``images`` is then empty)."""

    def __len__(self) -> int:
        return len(self.captions)


def _blocks(all_dims: list[int], names: list[str], used: list[str]) -> torch.Tensor:
    """Column indices of the used teachers' blocks in the stored concatenation."""
    starts = np.cumsum([0] + all_dims)
    return torch.cat([torch.arange(starts[names.index(n)], starts[names.index(n) + 1]) for n in used])


def load_reinforced_set(recipe: Recipe, reinforced: ReinforcedDataset, ws: Workspace, load_size: int, tokenizer,
                        progress: bool = True) -> ReinforcedSet:
    """Read every shard once into tensors; images come from the datasets' decoded arrays, joined by uid, or,
    for released shards (``data.reinforced``), from the shards themselves with their ``txt`` captions."""
    manifest = reinforced.manifest
    released = manifest.get("source") == "datacompdr"
    teachers = ([t.model_dump() for t in recipe.data.reinforced.teachers] if released else manifest["teachers"])
    names = [t["name"] for t in teachers]
    used = recipe.distilled_teachers
    columns = _blocks([t["dim"] for t in teachers], names, used)
    width = len(columns)

    rows: dict[str, tuple[int, int]] = {}
    arrays = []
    for d, dataset in enumerate([] if released else manifest["datasets"]):
        split = load_training_arrays(ws.dataset_dir(dataset), load_size, recipe.data.holdout, progress=progress)
        arrays.append(split)
        rows |= {uid: (d, i) for i, uid in enumerate(split.uids)}
    image_emb, text_emb, syn_emb, syn_valid, syn_texts, params_rows, images, captions = [], [], [], [], [], [], [], []
    keys, per_captioner, k = None, 0, manifest.get("augmentations")
    for sample in reinforced.samples():
        if keys is None:  # ours: the manifest's captioners; released: the first sample's syn.json keys
            keys, per_captioner = _caption_keys(recipe, manifest, sample, released)
            slots = len(keys) * per_captioner
        if released:
            image, caption = _released_pair(sample)
            if k is None:
                k = len(sample.param_aug)
            if len(sample.param_aug) != k:
                raise ValueError(f"{sample.uid}: {len(sample.param_aug)} stored augmentations, the first sample has {k}")
        elif recipe.data.holdout and sample.uid not in rows:  # in the held-out validation slice
            continue
        else:
            d, i = rows[sample.uid]
            image, caption = arrays[d].images[i], arrays[d].captions[i]
        images.append(image)
        captions.append(caption)
        image_emb.append(torch.from_numpy(sample.image_emb)[:, columns].half())
        text_emb.append(torch.from_numpy(sample.text_emb[0])[columns].half())
        params_rows += sample.param_aug
        texts, embs, valid = [], torch.zeros(slots, width, dtype=torch.float16), torch.zeros(slots, dtype=torch.bool)
        for c, key in enumerate(keys):
            stored = sample.syn_text.get(key, [])[:per_captioner]
            for j, text in enumerate(stored):
                embs[c * per_captioner + j] = torch.from_numpy(sample.syn_emb[key][j])[columns].half()
                valid[c * per_captioner + j] = True
            texts += stored + [""] * (per_captioner - len(stored))
        syn_emb.append(embs)
        syn_valid.append(valid)
        syn_texts.append(texts)
    if keys is None:
        raise ValueError(f"no reinforced samples in {', '.join(str(s) for s in reinforced.shards)}")
    keep = capped_rows(len(captions), recipe.data.max_train_samples, recipe.seed)
    params = decompress(params_rows, reinforced.policy).rows(torch.from_numpy(
        (keep[:, None] * k + np.arange(k)[None]).reshape(-1)))
    kept_captions = [captions[i] for i in keep]
    kept_syn = [syn_texts[i] for i in keep]
    flat = [t for texts in kept_syn for t in texts]
    syn_tokens = tokenize_all(tokenizer, flat).view(len(keep), slots, -1) if slots else torch.zeros(len(keep), 0, 1, dtype=torch.long)
    scales = {t["name"]: t["logit_scale"] for t in teachers}
    dims = {t["name"]: t["dim"] for t in teachers}
    kept_images = [images[i] for i in keep]
    return ReinforcedSet(
        images=torch.zeros(0, dtype=torch.uint8) if released else torch.from_numpy(np.stack(kept_images)),
        source_size=reinforced.source_size,
        reference_size=reinforced.reference_size, policy=reinforced.policy, params=params, augmentations=k,
        image_emb=torch.stack(image_emb)[keep], text_emb=torch.stack(text_emb)[keep], tokens=tokenize_all(tokenizer, kept_captions),
        captions=kept_captions, syn_emb=torch.stack(syn_emb)[keep] if slots else torch.zeros(len(keep), 0, width),
        syn_tokens=syn_tokens, syn_texts=kept_syn,
        syn_valid=torch.stack(syn_valid)[keep] if slots else torch.zeros(len(keep), 0, dtype=torch.bool),
        dims=[dims[n] for n in used], teacher_scales=[scales[n] for n in used],
        originals=kept_images if released else None)


def _caption_keys(recipe: Recipe, manifest: dict, first: ReinforcedSample, released: bool) -> tuple[list[str], int]:
    """The syn.json keys whose captions a student may read, and how many of each (``distill.captioners``,
    ``distill.synthetic_captions``). Released shards name their own keys (``syn_text``, ``syn_text_<x>``)."""
    chosen = recipe.distill.captioners
    if released:
        keys = ([c if c.startswith("syn_text") else syn_key(c) for c in chosen] if chosen else sorted(first.syn_text))
        stored = max((len(first.syn_text.get(key, [])) for key in keys), default=0)
    else:
        keys = [syn_key(c) for c in (chosen or [c["name"] for c in manifest["captioners"]])]
        stored = manifest["captions"]
    count = stored if recipe.distill.synthetic_captions is None else min(recipe.distill.synthetic_captions, stored)
    return keys, count


def _released_pair(sample: ReinforcedSample) -> tuple[torch.Tensor, str]:
    """A released sample's image (uint8 [H, W, 3] at its own size) and ground-truth caption."""
    from PIL import Image

    if "image" not in sample.meta or "txt" not in sample.meta:
        raise ValueError(f"{sample.uid}: the shard holds no image or no txt caption; join the reinforced shards "
                         f"with their image shards by uid first (the released DataCompDR shards carry no pixels)")
    with Image.open(io.BytesIO(sample.meta["image"])) as image:
        pixels = np.array(image.convert("RGB"))
    return torch.from_numpy(pixels), sample.meta["txt"]


@dataclass
class ReinforcedBatch:
    pixels: torch.Tensor          # float [B, 3, S, S]
    tokens: torch.Tensor          # ground truth (or, mixed in, a synthetic caption)
    teacher_image: torch.Tensor   # [B, D]
    teacher_text: torch.Tensor    # [B, D]
    syn_tokens: torch.Tensor | None
    teacher_syn: torch.Tensor | None
    indices: torch.Tensor         # samples of the batch
    params: AugParams             # the replayed augmentations
    texts: list[str]              # the captions ``tokens`` encode (for teachers run online)
    syn_texts: list[str] | None


class ReinforcedStream:
    """Batch ``step`` of the reinforced set for a student at ``out_size``.

    Every choice (samples, augmentation, caption, mixing) is drawn for the whole global batch from the
    step's generator, then ``part`` selects this rank's rows: ranks see disjoint slices of the batch a
    single process would see.
    """

    def __init__(self, data: ReinforcedSet, recipe: Recipe, out_size: int):
        self.order = EpochOrder(len(data), recipe.train.batch_size, recipe.seed)
        self.data, self.recipe, self.out_size = data, recipe, out_size
        self.seed = recipe.seed
        distill = recipe.distill
        self.synthetic = data.syn_valid.shape[1] > 0 and (distill.synthetic_weight > 0 or distill.mix_synthetic > 0)

    def batch(self, step: int, part: slice = slice(None)) -> ReinforcedBatch:
        data, distill = self.data, self.recipe.distill
        indices, epochs = self.order.indices(step)
        generator = _generator(self.seed, 3, step)
        if distill.augmentation_order == "sequential":
            augmentation = epochs % data.augmentations
        else:
            augmentation = torch.randint(data.augmentations, (len(indices),), generator=generator)
        slot = torch.full((len(indices),), -1)
        swap = torch.zeros(len(indices), dtype=torch.bool)
        if self.synthetic:
            valid = data.syn_valid[indices]
            scores = torch.rand(valid.shape, generator=generator).masked_fill(~valid, -1.0)
            slot = torch.where(valid.any(1), scores.argmax(1), slot)
            if distill.mix_synthetic > 0:
                swap = torch.rand(len(indices), generator=generator) < distill.mix_synthetic
        indices, augmentation, slot, swap = indices[part], augmentation[part], slot[part], swap[part]

        params = data.params.rows(indices * data.augmentations + augmentation)
        if data.originals is not None:  # released: each image at its own size, the crop box in its pixels
            pixels = torch.cat([apply(data.originals[i][None], params.rows([n]), data.policy, self.out_size, None,
                                      data.reference_size) for n, i in enumerate(indices.tolist())])
        else:
            pixels = apply(data.images[indices], params, data.policy, self.out_size, data.source_size,
                           data.reference_size)
        tokens, teacher_text = data.tokens[indices], data.text_emb[indices].float()
        texts = [data.captions[i] for i in indices.tolist()]
        syn_tokens = teacher_syn = syn_texts = None
        if self.synthetic:  # a sample whose captions were all dropped as duplicates uses its ground truth
            has = slot >= 0
            syn_tokens = torch.where(has[:, None], data.syn_tokens[indices, slot.clamp(min=0)], tokens)
            teacher_syn = torch.where(has[:, None], data.syn_emb[indices, slot.clamp(min=0)].float(), teacher_text)
            syn_texts = [data.syn_texts[i][j] if j >= 0 else texts[n]
                         for n, (i, j) in enumerate(zip(indices.tolist(), slot.tolist()))]
            if distill.mix_synthetic > 0:  # one caption per image: the ground truth or, with p, a synthetic one
                tokens = torch.where(swap[:, None], syn_tokens, tokens)
                teacher_text = torch.where(swap[:, None], teacher_syn, teacher_text)
                texts = [s if w else t for t, s, w in zip(texts, syn_texts, swap.tolist())]
                syn_tokens = teacher_syn = syn_texts = None
        return ReinforcedBatch(pixels, tokens, data.image_emb[indices, augmentation].float(), teacher_text, syn_tokens,
                               teacher_syn, indices, params, texts, syn_texts)

    def epochs_at(self, step: int) -> float:
        return self.order.epochs_at(step)
