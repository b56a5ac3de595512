"""Fit the complexity model's weights on labelled requests; report k-fold accuracy.

    python scripts/fit_complexity.py ../shared/data/routing_sample.jsonl [--write]

An ordinal logistic model (one linear score, two thresholds) fitted by gradient descent with
L2 regularisation, pure Python, deterministic. ``--write`` rewrites
``src/perfect21/planner/complexity_model.py``. The cross-validated accuracy printed here is
the honest estimate for unseen requests; the in-sample accuracy is reported by the tests.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

from perfect21._config import load_config
from perfect21.planner import Planner
from perfect21.planner.analysis import features
from perfect21.planner.evaluate import read_rows
from perfect21.planner.routing import score_agents
from perfect21.planner.text import normalize_request

LEVELS = {"simple": 0, "medium": 1, "complex": 2}
L2 = 0.001


def vectors(rows: list[dict[str, object]]) -> tuple[list[str], list[list[float]], list[int]]:
    planner = Planner.from_config(load_config(), project_dir=Path("/nonexistent"))
    index = planner.catalog.index
    names: list[str] = []
    xs: list[list[float]] = []
    ys: list[int] = []
    for row in rows:
        text = normalize_request(str(row["request"]))
        scan = index.scan(text)
        breadth = score_agents(index, scan).breadth()
        vec, _, _ = features(text, scan, index.tags(scan), agent_breadth=breadth)
        names = sorted(vec)
        xs.append([vec[n] for n in names])
        ys.append(LEVELS[str(row["complexity"])])
    return names, xs, ys


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


def fit(xs: list[list[float]], ys: list[int]) -> tuple[list[float], tuple[float, float]]:
    """Maximum likelihood with scipy when available (fast, converged), else gradient descent."""
    try:
        import numpy as np
        from scipy.optimize import minimize
    except ImportError:
        return fit_gd(xs, ys)
    x = np.array(xs)
    y = np.array(ys)
    dim = x.shape[1]

    def loss(params: np.ndarray) -> float:
        w, t0, gap = params[:dim], params[dim], params[dim + 1]
        t1 = t0 + abs(gap)
        s = x @ w
        p_gt0 = 1 / (1 + np.exp(-(s - t0)))
        p_gt1 = 1 / (1 + np.exp(-(s - t1)))
        probs = np.where(y == 0, 1 - p_gt0, np.where(y == 1, p_gt0 - p_gt1, p_gt1))
        return float(-np.log(np.clip(probs, 1e-9, 1)).sum() / len(y) + L2 * (w @ w))

    start = np.zeros(dim + 2)
    start[dim + 1] = 1.0
    result = minimize(loss, start, method="L-BFGS-B")
    w = [float(v) for v in result.x[:dim]]
    t0 = float(result.x[dim])
    return w, (t0, t0 + abs(float(result.x[dim + 1])))


def fit_gd(xs: list[list[float]], ys: list[int], epochs: int = 3000, lr: float = 0.05
           ) -> tuple[list[float], tuple[float, float]]:
    dim = len(xs[0])
    w = [0.0] * dim
    t = [-0.5, 0.5]
    n = len(xs)
    for _ in range(epochs):
        gw = [L2 * wi for wi in w]
        gt = [0.0, 0.0]
        for x, y in zip(xs, ys, strict=True):
            s = sum(wi * xi for wi, xi in zip(w, x, strict=True))
            # P(y > k) = sigmoid(s - t_k); negative log-likelihood gradient per threshold
            for k in (0, 1):
                p = sigmoid(s - t[k])
                target = 1.0 if y > k else 0.0
                err = p - target
                for i in range(dim):
                    gw[i] += err * x[i] / n
                gt[k] -= err / n
        w = [wi - lr * g for wi, g in zip(w, gw, strict=True)]
        t = [t[0] - lr * gt[0], t[1] - lr * gt[1]]
        if t[0] > t[1]:
            t = [t[1], t[0]]
    return w, (t[0], t[1])


def predict(w: list[float], t: tuple[float, float], x: list[float]) -> int:
    s = sum(wi * xi for wi, xi in zip(w, x, strict=True))
    return 2 if s >= t[1] else 0 if s < t[0] else 1


def main() -> None:
    path = Path(sys.argv[1])
    rows = read_rows(path)
    names, xs, ys = vectors(rows)
    order = list(range(len(xs)))
    random.Random(21).shuffle(order)
    folds = 5
    correct = 0
    for f in range(folds):
        test = set(order[f::folds])
        train = [i for i in order if i not in test]
        w, t = fit([xs[i] for i in train], [ys[i] for i in train])
        correct += sum(predict(w, t, xs[i]) == ys[i] for i in test)
    print(f"{folds}-fold cross-validated accuracy: {correct / len(xs):.3f}")
    w, t = fit(xs, ys)
    fitted = sum(predict(w, t, x) == y for x, y in zip(xs, ys, strict=True))
    print(f"in-sample accuracy: {fitted / len(xs):.3f}")
    for name, weight in zip(names, w, strict=True):
        print(f"  {name:<14} {weight:+.3f}")
    print(f"  thresholds     {t[0]:+.3f} {t[1]:+.3f}")
    if "--write" in sys.argv:
        root = Path(__file__).resolve().parent.parent
        target = root / "src/perfect21/planner/complexity_model.py"
        lines = [
            '"""Fitted weights of the complexity model (generated by'
            ' ``scripts/fit_complexity.py``).',
            "",
            f"Fitted on {path.name} ({len(xs)} requests); {folds}-fold cross-validated accuracy"
            f" {correct / len(xs):.3f}.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "WEIGHTS: dict[str, float] = {",
            *[f'    "{n}": {wi:.4f},' for n, wi in zip(names, w, strict=True)],
            "}",
            f"THRESHOLDS: tuple[float, float] = ({t[0]:.4f}, {t[1]:.4f})",
            "",
        ]
        target.write_text("\n".join(lines), encoding="utf-8")
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
