"""Fit the complexity model's weights on labelled requests; report cross-validated accuracy.

    python scripts/fit_complexity.py FILE.jsonl [FILE.jsonl ...] [--l2 X] [--repeats N] [--write]

An ordinal logistic model (one linear score, two thresholds: cumulative logit) fitted by
maximum likelihood with an L2 penalty on standardised features, pure Python (BFGS),
deterministic. All files are pooled for fitting. ``--write`` rewrites
``src/perfect21/planner/complexity_model.py``.

The honest estimate for unseen requests is the repeated stratified k-fold accuracy printed
first (every request is predicted by a model that did not see it; ``--repeats`` different
shuffles, 5 folds each); it is also broken down per file and as a confusion matrix. The
in-sample accuracy (the model fitted on everything) is printed last and is optimistic.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Sequence
from pathlib import Path

from perfect21._config import load_config
from perfect21.planner import Planner
from perfect21.planner.analysis import features
from perfect21.planner.evaluate import read_rows
from perfect21.planner.routing import score_agents
from perfect21.planner.text import normalize_request

LEVELS = {"simple": 0, "medium": 1, "complex": 2}
NAMES = ("simple", "medium", "complex")
L2 = 0.05  # per-request penalty on the standardised weights (chosen by cross-validation)
FOLDS = 5

Matrix = list[list[float]]


def vectors(rows: Sequence[dict[str, object]]) -> tuple[list[str], Matrix, list[int]]:
    planner = Planner.from_config(load_config(), project_dir=Path("/nonexistent"))
    index = planner.catalog.index
    names: list[str] = []
    xs: Matrix = []
    ys: list[int] = []
    for row in rows:
        text = normalize_request(str(row["request"]))
        scan = index.scan(text)
        breadth = score_agents(index, scan).breadth()
        vec, _ = features(text, scan, index.tag_groups(scan), agent_breadth=breadth)
        names = sorted(vec)
        xs.append([vec[n] for n in names])
        ys.append(LEVELS[str(row["complexity"])])
    return names, xs, ys


def _softplus(z: float) -> float:
    return z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


def _loss_grad(params: list[float], xs: Matrix, ys: list[int], l2: float
               ) -> tuple[float, list[float]]:
    """Mean negative log-likelihood + l2·|w|² and its gradient; params = w…, t0, log(t1-t0)."""
    dim = len(params) - 2
    w = params[:dim]
    t0 = params[dim]
    gap = math.exp(params[dim + 1])
    t1 = t0 + gap
    n = len(xs)
    loss = 0.0
    grad = [0.0] * (dim + 2)
    g_t0 = g_t1 = 0.0
    for x, y in zip(xs, ys, strict=True):
        s = sum(wi * xi for wi, xi in zip(w, x, strict=True))
        if y == 0:
            loss += _softplus(s - t0)
            d_s = _sigmoid(s - t0)
            g_t0 -= d_s
        elif y == 2:
            loss += _softplus(t1 - s)
            d_s = -_sigmoid(t1 - s)
            g_t1 -= d_s
        else:
            sa, sb = _sigmoid(s - t0), _sigmoid(s - t1)
            p = max(sa - sb, 1e-12)
            loss -= math.log(p)
            da, db = sa * (1 - sa), sb * (1 - sb)
            d_s = -(da - db) / p
            g_t0 += da / p
            g_t1 -= db / p
        for i, xi in enumerate(x):
            grad[i] += d_s * xi
    loss = loss / n + l2 * sum(wi * wi for wi in w)
    for i in range(dim):
        grad[i] = grad[i] / n + 2 * l2 * w[i]
    grad[dim] = (g_t0 + g_t1) / n
    grad[dim + 1] = g_t1 * gap / n
    return loss, grad


def _bfgs(params: list[float], xs: Matrix, ys: list[int], l2: float,
          iterations: int = 400) -> list[float]:
    size = len(params)
    inverse = [[float(i == j) for j in range(size)] for i in range(size)]
    loss, grad = _loss_grad(params, xs, ys, l2)
    for _ in range(iterations):
        direction = [-sum(inverse[i][j] * grad[j] for j in range(size)) for i in range(size)]
        slope = sum(d * g for d, g in zip(direction, grad, strict=True))
        if slope >= 0:  # not a descent direction: restart from steepest descent
            inverse = [[float(i == j) for j in range(size)] for i in range(size)]
            direction = [-g for g in grad]
            slope = -sum(g * g for g in grad)
        step = 1.0
        while True:
            trial = [p + step * d for p, d in zip(params, direction, strict=True)]
            new_loss, new_grad = _loss_grad(trial, xs, ys, l2)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-10:
                break
            step /= 2
        s = [a - b for a, b in zip(trial, params, strict=True)]
        yv = [a - b for a, b in zip(new_grad, grad, strict=True)]
        params, grad, old_loss, loss = trial, new_grad, loss, new_loss
        if abs(old_loss - loss) < 1e-11 and max(abs(g) for g in grad) < 1e-7:
            break
        sy = sum(a * b for a, b in zip(s, yv, strict=True))
        if sy > 1e-12:
            hy = [sum(inverse[i][j] * yv[j] for j in range(size)) for i in range(size)]
            yhy = sum(a * b for a, b in zip(yv, hy, strict=True))
            factor = (sy + yhy) / (sy * sy)
            for i in range(size):
                row = inverse[i]
                for j in range(size):
                    row[j] += factor * s[i] * s[j] - (hy[i] * s[j] + s[i] * hy[j]) / sy
    return params


def fit(xs: Matrix, ys: list[int], l2: float = L2) -> tuple[list[float], tuple[float, float]]:
    """Raw-scale weights and thresholds; the penalty applies to standardised features."""
    dim = len(xs[0])
    n = len(xs)
    mean = [sum(x[i] for x in xs) / n for i in range(dim)]
    std = [math.sqrt(sum((x[i] - mean[i]) ** 2 for x in xs) / n) or 1.0 for i in range(dim)]
    zs = [[(x[i] - mean[i]) / std[i] for i in range(dim)] for x in xs]
    params = _bfgs([0.0] * dim + [-0.5, 0.0], zs, ys, l2)
    w = [params[i] / std[i] for i in range(dim)]
    shift = sum(params[i] * mean[i] / std[i] for i in range(dim))
    t0 = params[dim] + shift
    return w, (t0, t0 + math.exp(params[dim + 1]))


def predict(w: Sequence[float], t: tuple[float, float], x: Sequence[float]) -> int:
    s = sum(wi * xi for wi, xi in zip(w, x, strict=True))
    return 2 if s >= t[1] else 0 if s < t[0] else 1


def folds_of(ys: list[int], seed: int) -> list[int]:
    """Stratified fold number of every request for one shuffle."""
    rng = random.Random(seed)
    fold = [0] * len(ys)
    for level in range(3):
        members = [i for i, y in enumerate(ys) if y == level]
        rng.shuffle(members)
        offset = rng.randrange(FOLDS)
        for k, i in enumerate(members):
            fold[i] = (k + offset) % FOLDS
    return fold


def cross_validate(xs: Matrix, ys: list[int], repeats: int, l2: float) -> list[list[int]]:
    """Out-of-fold predictions: one list per repeat."""
    runs: list[list[int]] = []
    for r in range(repeats):
        fold = folds_of(ys, 21 + r)
        pred = [0] * len(ys)
        for f in range(FOLDS):
            train = [i for i in range(len(ys)) if fold[i] != f]
            w, t = fit([xs[i] for i in train], [ys[i] for i in train], l2)
            for i in range(len(ys)):
                if fold[i] == f:
                    pred[i] = predict(w, t, xs[i])
        runs.append(pred)
    return runs


def write_model(names: list[str], w: list[float], t: tuple[float, float], files: list[str],
                n: int, l2: float, repeats: int, cv: float) -> Path:
    target = Path(__file__).resolve().parent.parent / "src/perfect21/planner/complexity_model.py"
    lines = [
        '"""Fitted weights of the complexity model (generated by ``scripts/fit_complexity.py``).',
        "",
        f"Fitted on {n} requests (L2 {l2}):",
        *[f"  {name}" for name in files],
        f"{repeats}x{FOLDS}-fold stratified cross-validated accuracy {cv:.3f}.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "WEIGHTS: dict[str, float] = {",
        *[f'    "{name}": {wi:.4f},' for name, wi in zip(names, w, strict=True)],
        "}",
        f"THRESHOLDS: tuple[float, float] = ({t[0]:.4f}, {t[1]:.4f})",
        "",
    ]
    target.write_text("\n".join(lines), encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--errors", action="store_true", help="list misclassified requests")
    parser.add_argument("--drop", default="", help="comma-separated features to leave out")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    source: list[str] = []
    for path in args.files:
        file_rows = read_rows(path)
        rows += file_rows
        source += [path.name] * len(file_rows)
    names, xs, ys = vectors(rows)
    keep = [j for j, n in enumerate(names) if n not in args.drop.split(",")]
    names = [names[j] for j in keep]
    xs = [[x[j] for j in keep] for x in xs]
    runs = cross_validate(xs, ys, args.repeats, args.l2)
    total = len(ys) * len(runs)
    right = sum(p == y for run in runs for p, y in zip(run, ys, strict=True))
    per_run = [sum(p == y for p, y in zip(run, ys, strict=True)) / len(ys) for run in runs]
    cv = right / total
    w, t = fit(xs, ys, args.l2)
    if args.write:  # before printing, so a closed pipe (| head) cannot skip it
        files = [f"{p.name} ({source.count(p.name)})" for p in args.files]
        target = write_model(names, w, t, files, len(ys), args.l2, args.repeats, cv)
        print(f"wrote {target}")
    print(f"{args.repeats}x{FOLDS}-fold stratified CV accuracy (all {len(ys)} requests): "
          f"{cv:.3f} (runs {min(per_run):.3f}-{max(per_run):.3f}), l2={args.l2}")
    for name in dict.fromkeys(source):
        idx = [i for i, s in enumerate(source) if s == name]
        ok = sum(run[i] == ys[i] for run in runs for i in idx) / (len(idx) * len(runs))
        print(f"  out-of-fold on {name:<28} ({len(idx):>3}): {ok:.3f}")
    print("  confusion (rows = label, cols = predicted, summed over repeats):")
    for level in range(3):
        counts = [sum(run[i] == p for run in runs for i in range(len(ys)) if ys[i] == level)
                  for p in range(3)]
        print(f"    {NAMES[level]:<8} " + " ".join(f"{c:>5}" for c in counts))
    if args.errors:
        for i, row in enumerate(rows):
            wrong = [run[i] for run in runs if run[i] != ys[i]]
            if len(wrong) * 2 > len(runs):
                guess = NAMES[max(set(wrong), key=wrong.count)]
                print(f"  x {row['id']} {NAMES[ys[i]]}->{guess}: "
                      f"{str(row['request'])[:110]!r}")
    fitted = sum(predict(w, t, x) == y for x, y in zip(xs, ys, strict=True)) / len(ys)
    print(f"in-sample accuracy: {fitted:.3f}")
    for name, weight in zip(names, w, strict=True):
        print(f"  {name:<14} {weight:+.3f}")
    print(f"  thresholds     {t[0]:+.3f} {t[1]:+.3f}")


if __name__ == "__main__":
    main()
