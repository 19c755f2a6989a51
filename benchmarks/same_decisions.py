"""Same decisions for the same seeds: one-worker searches of this checkout against a git revision.

A restructure must not change what the search trains. This runs the same one-worker
``ShapeSampler`` searches (in-memory storage, a deterministic noisy stand-in objective on a
42-shape WRN grid; accuracy goal and size goal with a floor; several seeds) with the package of
this checkout and with the package of ``--base`` (checked out into a temporary git worktree),
and compares the sequence of trained shapes and the answer.

    python benchmarks/same_decisions.py --base c67c957 [--seeds 4]

Each side builds the sampler with the API it has (``policy=osh.Adaptive()`` when present, the
default otherwise), so the comparison holds across the policy-object change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SEARCHES = r'''
import json, random, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
import optuna_shape as osh
space = osh.ShapeSpace("wrn", depth=(10, 46, 6), width=(0.5, 3.0, 0.5), in_channels=1,
                       num_classes=10, image_size=8)

def acc(s, k):
    r = random.Random(f"{s.depth}-{s.width}-{k}")
    return 97.0 - 2.0 / s.width - 30.0 / s.depth + r.gauss(0, 0.4)

out = {}
for goal, floor in (("accuracy", None), ("size", 95.0), ("size", 96.0)):
    for seed in range(int(sys.argv[1])):
        kw = {"policy": osh.Adaptive()} if hasattr(osh, "Adaptive") else {}
        sampler = osh.ShapeSampler(space, osh.Constraints(min_accuracy=floor), goal=goal,
                                   seed=seed, **kw)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        seen, calls = {}, []

        def objective(trial):
            s = osh.suggest_shape(trial, space)
            seen[s] = seen.get(s, 0) + 1
            calls.append([s.depth, s.width])
            return acc(s, seen[s])

        study.optimize(objective, n_trials=200)
        out[f"{goal} floor={floor} seed={seed}"] = {
            "calls": calls, "answer": str(osh.best_shape(study)), "trials": len(study.trials)}
print(json.dumps(out))
'''


def run(tree: Path, seeds: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", SEARCHES, str(seeds)], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--base", required=True, help="git revision to compare with")
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base_tree), args.base],
                       cwd=ROOT, check=True)
        try:
            base = run(base_tree, args.seeds)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT,
                           check=False)
    here = run(ROOT, args.seeds)
    same = 0
    print(f"| search | trainings ({args.base} / here) | trials ({args.base} / here) | "
          f"same trained shapes, same order | answer ({args.base} / here) |")
    print("|---|---:|---:|---|---|")
    for k, b in base.items():
        h = here[k]
        ok = b["calls"] == h["calls"] and b["answer"] == h["answer"]
        same += ok
        print(f"| {k} | {len(b['calls'])} / {len(h['calls'])} | {b['trials']} / {h['trials']} "
              f"| {'yes' if ok else '**no**'} | {b['answer']} / {h['answer']} |")
    print(f"\n{same} of {len(base)} searches made the same decisions.")
    return 0 if same == len(base) else 1


if __name__ == "__main__":
    raise SystemExit(main())
