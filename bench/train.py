"""Training throughput as three controlled pairs, from interleaved repetitions.

    python bench/train.py [--steps 40] [--repeats 5] [--dataset clipart-web] [--teachers lite0-minilm]
                          [--threads N] [--out FILE] [--skip-open-clip]

One process and one thread count for every variant (``--threads``, default torch's); the same student
(micro-vit-xs) and batch (128). Each repetition builds the model afresh from the same seed and runs
the same warm-up steps, then the same ``--steps`` timed steps (data, forward, backward, optimizer);
data are loaded once per variant, before any timing. Variants run once per round, in a rotated order
(bench/interleave.py). Each pair differs in one thing:

1. reinforced KD (ground-truth caption) vs plain CLIP drawing the reinforcement's augmentation policy
   online. Equal: data, 64 px decoded copy, policy, captions, steps. Differs: sampling the policy vs
   replaying stored parameters, and the KD loss on stored embeddings. Measures what distillation from
   a reinforced set costs over plain CLIP with the same augmentation.
2. reinforced KD vs online KD, both with a synthetic caption. Equal: replayed augmentations, captions,
   loss, student. Differs: every teacher-side cost online KD pays per step — the student's replay from
   the copy decoded at the teachers' source size (128 px) instead of its own 64 px copy, the teachers'
   views at their resolution, and their image and text forwards. The prediction removes exactly those
   measured costs from the online step (data time above reinforced KD's, plus the teacher call); the
   measured speed-up over the predicted one is then the trainer's own difference, ideally 1.
3. our plain-CLIP trainer vs ``open_clip_train`` (installed with open_clip_torch), on open_clip's
   synthetic data (a blank image at the model's input size, "Dummy caption"), the same model with
   CLIP's full vocabulary and the same batch. Equal: captions tokenised at every step (theirs per
   sample in the loader, ours per batch), no loader processes (their ``--workers 0``), the same
   threads, the same warm-up exclusion (their own batch-time meter over the steps after it). Differs:
   batched tensor crops vs per-sample PIL transforms, and the loop around the step.

Prints each variant's median samples/s with its spread, each pair's ratio of medians with the spread
of its per-round ratios, and writes every repetition's figures to one JSON file (path printed).
Needs the dataset built, the teachers (and captioners) fitted; the reinforcement is built if missing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import tempfile
import time
from pathlib import Path

import torch

from interleave import provenance, ratio, run_rounds, show_ratio, show_spread, spread, write_json
from workbench.config.recipe import (AugmentConfig, DataConfig, DistillConfig, ModelConfig, Recipe, ReinforceConfig,
                                     TrainConfig)
from workbench.models.students import create_student, get_tokenizer, make_encoder, register_micro_configs
from workbench.train.objective import Batch, plain_clip_loss, train_step
from workbench.study.pipeline import distillation
from workbench.train.loop import build_optimizer, lr_at
from workbench.train.trainer import PlainTask, ReinforcedTask
from workbench.workspace import Workspace

MODEL, IMAGE, BATCH, WARMUP = "micro-vit-xs", 32, 128, 6
CAPTION = "Dummy caption"
PLAIN, GT, SYN, ONLINE = ("plain CLIP, policy online", "reinforced KD, GT caption", "reinforced KD, GT + synthetic",
                          "online KD, GT + synthetic")
OURS, THEIRS = "ours, synthetic data", "open_clip_train, synthetic data"


class Clock:
    """Seconds spent inside wrapped methods, per label, since the last reset."""

    def __init__(self):
        self.seconds: dict[str, float] = {"data": 0.0, "teacher": 0.0}

    def wrap(self, owner, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            tick = time.perf_counter()
            out = original(*args, **kwargs)
            self.seconds[label] += time.perf_counter() - tick
            return out

        setattr(owner, attribute, timed)

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.seconds, 0.0)


class SyntheticTask:
    """Our plain-CLIP data path on open_clip_train's synthetic data, captions tokenised at every step."""

    def __init__(self, model_name: str, image_size: int):
        from workbench.train.data import BatchStream, TrainingSet

        count = BATCH * 4
        self.tokenizer = get_tokenizer(model_name)
        images = torch.zeros(count, image_size, image_size, 3, dtype=torch.uint8)
        data = TrainingSet(images, [CAPTION] * count, torch.zeros(count, 1, dtype=torch.long), {})
        self.stream, self.loss_fn = BatchStream(data, BATCH, 0, image_size, AugmentConfig()), plain_clip_loss

    def batch(self, step: int, part: slice) -> Batch:
        pixels, _ = self.stream.batch(step)
        return Batch(pixels[part], [self.tokenizer([CAPTION] * len(pixels))[part]])


def timed_run(recipe: Recipe, task, clock: Clock, steps: int) -> dict:
    """One repetition: a fresh model from seed 0, WARMUP untimed steps, then ``steps`` timed ones."""
    torch.manual_seed(0)
    model = create_student(recipe.model, recipe.train.logit_scale_init)
    encoder = make_encoder(model, recipe.model.name)
    optimizer = build_optimizer(model, recipe.train)
    total = 0.0
    for step in range(WARMUP + steps):
        if step == WARMUP:
            clock.reset()
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, recipe.train)
        batch: Batch = task.batch(step, slice(None))
        optimizer.zero_grad(set_to_none=True)
        train_step(model, encoder.normalize, batch, task.loss_fn, 1, contextlib.nullcontext())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step >= WARMUP:
            total += time.perf_counter() - tick
    return {"samples_per_s": steps * BATCH / total, "step_s": total / steps,
            "data_s": clock.seconds["data"] / steps, "teacher_s": clock.seconds["teacher"] / steps}


def variant(recipe: Recipe, ws: Workspace, steps: int):
    """Load the variant's data once; return the callable that times one repetition."""
    if recipe.reinforce.teachers:
        task = ReinforcedTask(recipe, ws, IMAGE, get_tokenizer(MODEL), False, distillation(recipe, ws, False)[0])
    else:
        task = PlainTask(recipe, ws, IMAGE, get_tokenizer(MODEL), False)
    clock = Clock()
    clock.wrap(task.stream, "batch", "data")
    if getattr(task, "online", False):
        clock.wrap(task, "_teach", "teacher")
    return lambda: timed_run(recipe, task, clock, steps)


def bench_model() -> str:
    """micro-vit-xs with CLIP's full vocabulary (open_clip_train's tokenizer needs one), under another name."""
    import open_clip

    from workbench.models.students import CONFIG_DIR

    config = json.loads((CONFIG_DIR / f"{MODEL}.json").read_text())
    config["text_cfg"]["vocab_size"] = 49408
    folder = Path(tempfile.mkdtemp())
    (folder / "bench-vit-xs.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder)
    return "bench-vit-xs"


def ours_variant(model_name: str, steps: int):
    import open_clip

    size = open_clip.get_model_config(model_name)["vision_cfg"]["image_size"]
    recipe = Recipe(model=ModelConfig(name=model_name), train=TrainConfig(batch_size=BATCH, steps=1000))
    task, clock = SyntheticTask(model_name, size), Clock()
    clock.wrap(task.stream, "batch", "data")
    return lambda: timed_run(recipe, task, clock, steps)


LOG_LINE = re.compile(r"\[\s*(\d+)/\d+ \(\d+%\)\] Data \(t\): ([0-9.]+) Batch \(t\): ([0-9.]+)")


def open_clip_train_run(model_name: str, steps: int) -> dict:
    """One run of open_clip_train.main in this process; the mean step over the steps after WARMUP, from
    its own running means (logged after step 1, WARMUP and the last)."""
    from open_clip_train.main import main as open_clip_main

    register_micro_configs()
    total = WARMUP + steps
    root = logging.getLogger()
    (handlers, level), root.handlers = (list(root.handlers), root.level), []  # its log goes to ``output`` only
    output = io.StringIO()
    with tempfile.TemporaryDirectory() as logs, contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            open_clip_main(["--model", model_name, "--dataset-type", "synthetic", "--train-num-samples",
                            str(BATCH * total), "--batch-size", str(BATCH), "--epochs", "1", "--workers", "0",
                            "--device", "cpu", "--precision", "fp32", "--log-every-n-steps", str(WARMUP - 1),
                            "--logs", logs, "--name", "bench", "--save-frequency", "0", "--lr", "1e-3",
                            "--warmup", "10", "--report-to", ""])
        finally:
            root.handlers = handlers
            root.setLevel(level)
    means = {int(n) // BATCH: (float(d), float(b)) for n, d, b in LOG_LINE.findall(output.getvalue())}
    if WARMUP not in means or total not in means:
        raise RuntimeError(f"open_clip_train logged no running means at steps {WARMUP} and {total}:\n"
                           + output.getvalue()[-2000:])
    (data_w, batch_w), (data_t, batch_t) = means[WARMUP], means[total]
    step = (batch_t * total - batch_w * WARMUP) / steps
    return {"samples_per_s": BATCH / step, "step_s": step, "data_s": (data_t * total - data_w * WARMUP) / steps,
            "teacher_s": 0.0}


def online_prediction(online: list[dict], reinforced: list[dict]) -> dict:
    """Per round: the online step without its teacher-side costs predicts reinforced KD's step."""
    rounds = []
    for on, re_ in zip(online, reinforced):
        decode = on["data_s"] - re_["data_s"]  # the student's replay from the 128 px copy, above its own
        predicted_step = on["step_s"] - on["teacher_s"] - decode
        rounds.append({"teacher_share": on["teacher_s"] / on["step_s"], "decode_share": decode / on["step_s"],
                       "predicted": on["step_s"] / predicted_step, "achieved": on["step_s"] / re_["step_s"],
                       "achieved_over_predicted": predicted_step / re_["step_s"]})
    return {key: spread([r[key] for r in rounds]) for key in rounds[0]} | {"rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per repetition")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (every variant once per round)")
    parser.add_argument("--dataset", default="clipart-web")
    parser.add_argument("--teachers", nargs="+", default=["lite0-minilm"])
    parser.add_argument("--captioners", nargs="*", default=["clipart-web", "tuxpaint"])
    parser.add_argument("--augmentations", type=int, default=8, help="K stored augmentations per image")
    parser.add_argument("--zoo", help="teacher zoo YAML (default: the built-in zoo)")
    parser.add_argument("--captioner-registry", help="captioner registry YAML (default: the built-in one)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path,
                        help="JSON of every repetition (default: WORKSPACE/bench/train-<time>.json)")
    parser.add_argument("--skip-open-clip", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ws = Workspace.resolve()
    base = dict(model=ModelConfig(name=MODEL), train=TrainConfig(batch_size=BATCH, steps=1000, warmup_steps=100),
                data=DataConfig(train=[args.dataset]))
    reinforce = ReinforceConfig(teachers=args.teachers, augmentations=args.augmentations, captioners=args.captioners,
                                captions=3, zoo=args.zoo, registry=args.captioner_registry)
    recipes = {PLAIN: Recipe(**base, augment=AugmentConfig(policy=reinforce.augment)),
               GT: Recipe(**base, reinforce=reinforce, distill=DistillConfig(synthetic_weight=0)),
               SYN: Recipe(**base, reinforce=reinforce),
               ONLINE: Recipe(**base, reinforce=reinforce, distill=DistillConfig(mode="online"))}
    variants = {name: variant(recipe, ws, args.steps) for name, recipe in recipes.items()}
    if not args.skip_open_clip:
        model_name = bench_model()
        variants[OURS] = ours_variant(model_name, args.steps)
        variants[THEIRS] = lambda: open_clip_train_run(model_name, args.steps)
    results, orders = run_rounds(variants, args.repeats)

    rate = {name: [r["samples_per_s"] for r in runs] for name, runs in results.items()}
    summary = {name: spread(values) for name, values in rate.items()}
    print(f"\nsamples/s, median of {args.repeats} interleaved rounds ({args.steps} steps each, "
          f"{torch.get_num_threads()} threads):")
    for name, s in summary.items():
        print(f"  {name:32} {show_spread(s)}")
    pairs = {"reinforced KD (GT) / plain CLIP, same policy online": ratio(rate[GT], rate[PLAIN]),
             "reinforced KD / online KD (GT + synthetic)": ratio(rate[SYN], rate[ONLINE])}
    if not args.skip_open_clip:
        pairs["ours / open_clip_train, synthetic data"] = ratio(rate[OURS], rate[THEIRS])
    print("ratios of samples/s:")
    for name, r in pairs.items():
        print(f"  {name:52} {show_ratio(r)}")
    online = online_prediction(results[ONLINE], results[SYN])
    print(f"online KD's teacher-side costs: teachers' views and forwards {show_spread(online['teacher_share'], 3)} "
          f"of its step; replay from the 128 px copy above the 64 px one {show_spread(online['decode_share'], 3)}")
    print(f"  predicted speed-up of reinforced KD {show_spread(online['predicted'], 2)}; "
          f"achieved {show_spread(online['achieved'], 2)}")
    print(f"  achieved / predicted (per round) {show_spread(online['achieved_over_predicted'], 3)}")
    config = vars(args) | {"model": MODEL, "batch": BATCH, "warmup": WARMUP, "out": str(args.out or "")}
    path = write_json("train", args.out, ws.root, {**provenance(config), "orders": orders, "runs": results,
                                                    "samples_per_s": summary, "ratios": pairs, "online_kd": online})
    print(f"every repetition: {path}")


if __name__ == "__main__":
    main()
