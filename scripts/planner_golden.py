"""Dump the planner's output for every labelled request, to check a refactoring changes nothing.

    python scripts/planner_golden.py OUT_DIR
    diff -r OUT_BEFORE OUT_AFTER        # must print nothing

Writes, per request file (../shared/data/routing_sample.jsonl, tests/planner/data/*.jsonl):

* ``NAME.batch.jsonl`` — ``perfect21 plan --batch`` through the CLI, twice: with a fresh
  catalog cache (compiled from the agent files) and again (read from the marshal cache);
  both must be identical, the script checks;
* ``NAME.text.txt`` — in-process text ``--explain``, Mermaid and Claude renderings of every
  plan (the same functions the CLI calls);
* ``cli.formats.txt`` — the CLI's text ``--explain``, mermaid and claude output for a subset;
* ``edge.txt`` — edge cases: a 1 MB request (past ``MAX_TEXT_CHARS``), mixed scripts,
  numbers with units, pasted errors, punctuation only after normalisation.

``heldout_user_agents.jsonl`` is also planned with ``--agents-dir tests/planner/data/
user_agents --no-builtin``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT.parent / "shared" / "data" / "routing_sample.jsonl",
         *sorted((ROOT / "tests" / "planner" / "data").glob("*.jsonl"))]
USER_AGENTS = ROOT / "tests" / "planner" / "data" / "user_agents"
CLI = [str(Path(sys.executable).with_name("perfect21"))]
EDGE = [
    "[0] " + "Migrate the billing service from MySQL to PostgreSQL without downtime; " * 16_000,
    "把 40 services 迁到 k8s，15 万行代码，3 个 k8s 集群, 1M users, 200 张表都要迁移",
    'Traceback: File "app.py", line 3\n  at com.foo.Bar(Bar.java:12)\nNullPointerException',
    "fix typo in `get_user()` — rename user_id to account_id",
    "Build: login, signup, reset; and also billing? plus admin! 再加个报表。",
    "a",
    "实现用户登录功能，使用JWT认证",
]


def _cli(args: list[str], home: Path, stdin: str | None = None) -> str:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PERFECT21_HOME": str(home), "NO_COLOR": "1"}
    env.pop("PERFECT21_CONFIG", None)
    done = subprocess.run([*CLI, *args], env=env, input=stdin, capture_output=True,
                          text=True, check=False, cwd=home)
    return done.stdout + (f"\n[stderr]\n{done.stderr}" if done.stderr else "") + \
        f"\n[rc {done.returncode}]\n"


def _renderings(planner: object, requests: list[str]) -> str:
    from perfect21.planner.render import render

    out = []
    for request in requests:
        plan = planner.plan(request)  # type: ignore[attr-defined]
        out.append(render(plan, "json"))
        out.append(render(plan, "text", explain=True))
        out.append(render(plan, "mermaid"))
        out.append(render(plan, "claude"))
    return "\n".join(out)


def main(out: Path) -> None:
    from perfect21.planner import Planner
    from perfect21.planner.catalog import load_catalog

    out.mkdir(parents=True, exist_ok=True)
    builtin = Planner(load_catalog(user=False, cache_dir=None), cache_entries=0)
    users = Planner(load_catalog(builtin=False, user=False, extra_dirs=[USER_AGENTS],
                                 cache_dir=None), cache_entries=0)
    with tempfile.TemporaryDirectory(prefix="p21-golden-") as tmp:
        home = Path(tmp)
        for path in FILES:
            requests = [json.loads(line)["request"] for line in path.read_text().splitlines()
                        if line.strip()]
            variants = [("", [], builtin)]
            if path.name == "heldout_user_agents.jsonl":
                variants.append((".user", ["--agents-dir", str(USER_AGENTS), "--no-builtin"],
                                 users))
            for suffix, extra, planner in variants:
                name = path.stem + suffix
                first = _cli(["plan", "--batch", str(path), *extra], home / name)
                second = _cli(["plan", "--batch", str(path), *extra], home / name)
                if first != second:
                    raise SystemExit(f"{name}: cold and cached catalog plans differ")
                (out / f"{name}.batch.jsonl").write_text(first)
                (out / f"{name}.text.txt").write_text(_renderings(planner, requests))
        sample = [json.loads(line)["request"] for line in FILES[0].read_text().splitlines()]
        lines = []
        for request in sample[::16]:
            for args in (["--explain"], ["-f", "mermaid"], ["-f", "claude"]):
                lines.append(_cli(["plan", request, *args], home / "formats"))
        (out / "cli.formats.txt").write_text("".join(lines))
    (out / "edge.txt").write_text(_renderings(builtin, EDGE))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, metavar="OUT_DIR", help="folder to write the dump to")
    main(parser.parse_args().out)
