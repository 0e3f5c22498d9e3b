"""Study workers on one PostgreSQL study: wall time of a smoke grid with 1 worker against N workers.

    python bench/workers.py [--workers 3] [--points 12] [--repeats 5] [--out FILE]

Each run starts a fresh database on a PostgreSQL server on loopback (tests/postgres.py), a fresh stage
cache over the same built shapes data, and the given number of `workbench study worker` processes on
one study file (one torch thread a trial); its time runs from the first worker's start to the last one's
exit. The variants differ only in how many workers pull the same trials. Every run also checks each
point finished exactly once. The speed-up is bounded by the cores: on a machine with fewer cores than
workers, expect at most cores× (the machine's core count is printed). Writes every repetition's
figures to one JSON file (path printed; default workspace/bench/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests' helpers
from interleave import provenance, ratio, run_rounds, show_ratio, show_spread, spread, write_json  # noqa: E402
from tests.conftest import SHAPES_SUITE_FILE, shapes_samples  # noqa: E402
from tests.postgres import PostgresServer, postgres_bindir  # noqa: E402
from workbench.data.shards import write_dataset  # noqa: E402
from workbench.tracking.stores import sqlalchemy_url  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402

STUDY = """
study: workers-bench
profile: smoke
set:
  data.train: [shapes]
  data.max_train_samples: 96
  eval.suite: {suite}
  train.steps: {steps}
  train.eval_every: {steps}
  train.threads: 1
axes:
  lr: {{key: train.lr, values: {values}}}
seeds: {seeds}
table: {{rows: lr, metrics: [avg]}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3, help="workers of the parallel variant")
    parser.add_argument("--points", type=int, default=12, help="trials in the grid (3 learning rates × seeds)")
    parser.add_argument("--steps", type=int, default=40, help="training steps of each trial")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (both variants once per round)")
    parser.add_argument("--out", type=Path, help="JSON path (default: workspace/bench/workers-<time>.json)")
    parser.add_argument("--check", action="store_true", help="one small round of each variant, to try the bench")
    args = parser.parse_args()
    if args.check:
        args.points, args.steps, args.repeats = 3, 6, 1
    bindir = postgres_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (`make postgres` installs it)")

    scratch = Path(tempfile.mkdtemp(prefix="workbench-bench-workers-"))
    scratch.chmod(0o755)
    server = PostgresServer(scratch / "cluster", bindir).start()
    try:
        data = Workspace.resolve(scratch / "data-ws").ensure()
        write_dataset(data.dataset_dir("shapes"), "shapes", shapes_samples(), eval_fraction=0.25)
        seeds = max(1, args.points // 3)
        study = scratch / "study.yaml"
        study.write_text(STUDY.format(suite=SHAPES_SUITE_FILE, steps=args.steps, values=[1e-3, 2e-3, 3e-3],
                                      seeds=seeds))
        runs = {"count": 0}

        def variant(workers: int):
            def run() -> dict:
                runs["count"] += 1
                ws = Workspace.resolve(scratch / f"run-{runs['count']}").ensure()
                (ws.data_dir / "shapes").symlink_to(data.dataset_dir("shapes"), target_is_directory=True)
                storage = server.database()
                env = {**os.environ, "WORKBENCH_HOME": str(ws.root), "WORKBENCH_OPTUNA_STORAGE": storage}
                started = time.perf_counter()
                procs = [subprocess.Popen([sys.executable, "-m", "workbench.cli", "study", "worker", str(study)],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                         for _ in range(workers)]
                errors = [p.communicate()[1] for p in procs]
                codes = [p.returncode for p in procs]
                seconds = time.perf_counter() - started
                trials = optuna.load_study(study_name="workers-bench/smoke",
                                           storage=sqlalchemy_url(storage)).get_trials()
                points = [t.user_attrs["point_id"] for t in trials if t.state.name == "COMPLETE"]
                if codes != [0] * workers or len(points) != 3 * seeds or len(set(points)) != len(points):
                    failed = next((e for e, c in zip(errors, codes) if c), "")
                    raise RuntimeError(f"{workers} workers: exit codes {codes}, {len(points)} complete trials; "
                                       f"a failed worker's stderr ends:\n{failed[-3000:]}")
                shutil.rmtree(ws.root)
                return {"seconds": seconds, "trials": len(points)}
            return run

        one, many = "1 worker", f"{args.workers} workers"
        results, plan = run_rounds({one: variant(1), many: variant(args.workers)}, args.repeats)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    walls = {name: [r["seconds"] for r in rows] for name, rows in results.items()}
    summary = {name: spread(values) for name, values in walls.items()}
    speedup = ratio(walls[one], walls[many])
    print(f"{3 * seeds} smoke trials of {args.steps} steps, {os.cpu_count()} cores")
    for name in walls:
        print(f"  {name}: {show_spread(summary[name])} s")
    print(f"speed-up of {many} over {one}: {show_ratio(speedup)}")
    out = write_json("workers", args.out, Workspace.resolve().root, {
        "provenance": provenance({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
                                | {"cores": os.cpu_count()}), "rounds": plan, "results": results,
        "summary": summary, "speedup": speedup})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
