"""Training throughput: reinforced KD against plain CLIP, online KD and open_clip's own trainer.

    python bench/train.py [--steps 60] [--dataset clipart-web] [--teachers lite0-minilm]

One process, one run, the same student (micro-vit-xs) and batch (128) throughout; each variant runs a
few warm-up steps, then ``--steps`` timed steps (data, forward, backward, optimizer):

1. plain CLIP (the baseline trainer path: crops of the decoded set, ground-truth captions);
2. reinforced KD, ground-truth caption only — same captions per image as plain, so the difference is
   the cost of distillation itself (replayed augmentation, stored embeddings, KD loss);
3. reinforced KD with a synthetic caption as well (a second text-tower pass per image);
4. online KD: the same loss with the teachers run on the same replayed images at every step. The
   teachers' share s of its step time predicts a speed-up of 1 / (1 − s) for reinforced KD; the
   measured speed-up is compared with that;
5. plain CLIP drawing the reinforcement's augmentation policy online: the same pixels' cost as a
   replay, so reinforced KD against it isolates what distillation itself costs;
6. ``open_clip_train`` (installed with open_clip_torch) against our plain-CLIP trainer, both on
   synthetic data of the same shape (open_clip's blank image and "Dummy caption"), the same model
   with a full-size vocabulary (open_clip_train's tokenizer needs one) and batch; theirs reads its
   own logged samples/s.

Needs the dataset built and the reinforcement of the recipe below (``workbench reinforce`` with the
same --set values; it is built if missing).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time

import torch

from workbench.config.recipe import (AugmentConfig, DataConfig, DistillConfig, ModelConfig, Recipe, ReinforceConfig,
                                     TrainConfig)
from workbench.models.students import create_student, get_tokenizer, make_encoder, register_micro_configs
from workbench.train.objective import Batch, plain_clip_loss, train_step
from workbench.train.trainer import PlainTask, ReinforcedTask, build_optimizer, lr_at
from workbench.workspace import Workspace

MODEL, BATCH = "micro-vit-xs", 128


def time_variant(recipe: Recipe, ws: Workspace, steps: int) -> dict:
    task_cls = ReinforcedTask if recipe.reinforce.teachers else PlainTask
    task = task_cls(recipe, ws, 32, get_tokenizer(recipe.model.name), False)
    return time_task(recipe, task, steps)


def time_task(recipe: Recipe, task, steps: int, warmup: int = 5) -> dict:
    torch.manual_seed(0)
    model = create_student(recipe.model, recipe.train.logit_scale_init)
    encoder = make_encoder(model, recipe.model.name)
    optimizer = build_optimizer(model, recipe.train)
    teacher_seconds = 0.0
    if getattr(task, "online", False):
        teach = task._teach

        def timed(b):
            nonlocal teacher_seconds
            tick = time.perf_counter()
            out = teach(b)
            teacher_seconds += time.perf_counter() - tick
            return out

        task._teach = timed
    total = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            teacher_seconds = 0.0
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, recipe.train)
        batch: Batch = task.batch(step, slice(None))
        optimizer.zero_grad(set_to_none=True)
        train_step(model, encoder.normalize, batch, task.loss_fn, 1, contextlib.nullcontext())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step >= warmup:
            total += time.perf_counter() - tick
    return {"samples_per_s": steps * BATCH / total, "step_s": total / steps, "teacher_share": teacher_seconds / total}


def bench_model() -> str:
    """micro-vit-xs with CLIP's full vocabulary, registered with open_clip under another name."""
    import json
    from pathlib import Path

    import open_clip

    from workbench.models.students import CONFIG_DIR

    config = json.loads((CONFIG_DIR / f"{MODEL}.json").read_text())
    config["text_cfg"]["vocab_size"] = 49408
    folder = Path(tempfile.mkdtemp())
    (folder / "bench-vit-xs.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder)
    return "bench-vit-xs"


def ours_on_synthetic(model_name: str, steps: int) -> float:
    """Our plain-CLIP step over the same synthetic data: blank images, one caption, crops as usual."""
    from workbench.config.recipe import AugmentConfig
    from workbench.train.data import BatchStream, TrainingSet

    tokenizer = get_tokenizer(model_name)
    count = BATCH * 4
    data = TrainingSet(torch.zeros(count, 64, 64, 3, dtype=torch.uint8), ["Dummy caption"] * count,
                       tokenizer(["Dummy caption"] * count), {})
    recipe = Recipe(model=ModelConfig(name=model_name), train=TrainConfig(batch_size=BATCH, steps=1000))
    task = PlainTask.__new__(PlainTask)  # its data path over these tensors instead of a dataset on disk
    task.stream, task.loss_fn = BatchStream(data, BATCH, 0, 32, AugmentConfig()), plain_clip_loss
    return time_task(recipe, task, steps)["samples_per_s"]


def open_clip_train_samples_per_s(model_name: str, steps: int) -> float:
    """Run open_clip_train.main on its synthetic data in this process; average its logged samples/s."""
    import io
    import logging

    from open_clip_train.main import main as open_clip_main

    register_micro_configs()
    with tempfile.TemporaryDirectory() as logs:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        logging.getLogger().addHandler(handler)
        try:
            open_clip_main(["--model", model_name, "--dataset-type", "synthetic", "--train-num-samples", str(BATCH * steps),
                            "--batch-size", str(BATCH), "--epochs", "1", "--workers", "1", "--device", "cpu",
                            "--precision", "fp32", "--log-every-n-steps", "5", "--logs", logs, "--name", "bench",
                            "--save-frequency", "0", "--lr", "1e-3", "--warmup", "10", "--report-to", ""])
        finally:
            logging.getLogger().removeHandler(handler)
    rates = [float(m) for m in re.findall(r"([0-9.]+)/s/gpu", stream.getvalue())]
    if not rates:
        raise RuntimeError("no throughput lines in open_clip_train's log:\n" + stream.getvalue()[-2000:])
    return sum(rates[1:]) / len(rates[1:]) if len(rates) > 1 else rates[0]  # the first window holds start-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--dataset", default="clipart-web")
    parser.add_argument("--teachers", nargs="+", default=["lite0-minilm"])
    parser.add_argument("--captioners", nargs="*", default=["clipart-web", "tuxpaint"])
    parser.add_argument("--skip-open-clip", action="store_true")
    args = parser.parse_args()
    ws = Workspace.resolve()
    base = dict(model=ModelConfig(name=MODEL), train=TrainConfig(batch_size=BATCH, steps=1000, warmup_steps=100),
                data=DataConfig(train=[args.dataset]))
    reinforce = ReinforceConfig(teachers=args.teachers, augmentations=8, captioners=args.captioners, captions=3)
    variants = {
        "plain CLIP": Recipe(**base),
        "plain CLIP, strong policy online": Recipe(**base, augment=AugmentConfig(policy="strong")),
        "reinforced KD, GT caption": Recipe(**base, reinforce=reinforce, distill=DistillConfig(synthetic_weight=0)),
        "reinforced KD, GT + synthetic": Recipe(**base, reinforce=reinforce),
        "online KD, GT + synthetic": Recipe(**base, reinforce=reinforce, distill=DistillConfig(mode="online")),
    }
    results = {}
    for name, recipe in variants.items():
        results[name] = time_variant(recipe, ws, args.steps)
        r = results[name]
        print(f"{name:32} {r['samples_per_s']:8.1f} samples/s  {r['step_s'] * 1e3:7.1f} ms/step"
              + (f"  teachers {r['teacher_share']:.1%} of the step" if r["teacher_share"] else ""), flush=True)
    plain, gt = results["plain CLIP"], results["reinforced KD, GT caption"]
    same_pixels = results["plain CLIP, strong policy online"]
    print(f"reinforced KD (GT) / plain CLIP with the same augmentation, samples/s: "
          f"{gt['samples_per_s'] / same_pixels['samples_per_s']:.3f}  [target >= 0.95]")
    print(f"reinforced KD (GT) / plain CLIP with crops only, samples/s: {gt['samples_per_s'] / plain['samples_per_s']:.3f}")
    reinforced, online = results["reinforced KD, GT + synthetic"], results["online KD, GT + synthetic"]
    predicted = 1 / (1 - online["teacher_share"])
    achieved = reinforced["samples_per_s"] / online["samples_per_s"]
    print(f"reinforced vs online KD: speed-up {achieved:.2f}x; the teachers' share ({online['teacher_share']:.1%}) "
          f"predicts {predicted:.2f}x; achieved / predicted = {achieved / predicted:.3f}  [target >= 0.9]")
    if not args.skip_open_clip:
        name = bench_model()
        ours = ours_on_synthetic(name, args.steps)
        theirs = open_clip_train_samples_per_s(name, args.steps)
        print(f"synthetic data, {name}: ours {ours:.1f} samples/s, open_clip_train {theirs:.1f} samples/s; "
              f"ours / theirs = {ours / theirs:.3f}  [target >= 1.1]")
    print(f"threads {torch.get_num_threads()}; python {sys.version.split()[0]}; torch {torch.__version__}")


if __name__ == "__main__":
    main()
