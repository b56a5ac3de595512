"""``perfect21 plan`` and ``perfect21 agents`` end to end, as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perfect21 import __version__
from perfect21.cli._app import COMMANDS
from perfect21.planner import Planner
from perfect21.planner.models import STAGE_ORDER

from .conftest import RunCli

LOGIN = "实现用户登录功能，使用JWT认证"
QUALITY_AGENTS = {
    "accessibility-auditor", "code-reviewer", "e2e-test-specialist", "performance-tester",
    "security-auditor", "test-engineer",
}


def _plan_json(run_cli: RunCli, *args: str, stdin: str | bytes | None = None) -> dict[str, Any]:
    proc = run_cli("plan", *args, "--format", "json", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def _same_plan(planner: Planner, request: str) -> dict[str, Any]:
    """The plan the CLI prints, computed in-process (same built-in catalog, no user agents)."""
    return planner.plan(request).to_dict()


def test_plan_text_output(run_cli: RunCli, builtin_planner: Planner) -> None:
    """Without a TTY, the default output is plain text: id, analysis, agents and stages."""
    proc = run_cli("plan", LOGIN)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Plan plan-")
    assert f"Request: {LOGIN}" in out
    assert "Analysis:" in out and "Agents:" in out and "Stages:" in out
    assert "\x1b[" not in out  # no terminal escapes when piped
    plan = _same_plan(builtin_planner, LOGIN)
    for agent in plan["agents"]:
        assert agent["name"] in out
    assert plan["id"] in out


def test_plan_json_schema(run_cli: RunCli) -> None:
    """``--format json`` has every documented key with the documented type."""
    plan = _plan_json(run_cli, "Users in Japan say the checkout page takes forever to load")
    assert isinstance(plan["id"], str) and plan["id"]
    assert plan["request"] == "Users in Japan say the checkout page takes forever to load"
    assert isinstance(plan["catalog_version"], str) and plan["catalog_version"]
    analysis = plan["analysis"]
    assert analysis["complexity"] in {"simple", "medium", "complex"}
    for key in ("domains", "stack", "reasons"):
        assert isinstance(analysis[key], list)
        assert all(isinstance(v, str) for v in analysis[key])
    assert analysis["reasons"], "every analysis carries its reasons"
    assert type(analysis["estimated_loc"]) is int and analysis["estimated_loc"] > 0
    assert type(analysis["modules"]) is int and analysis["modules"] >= 1
    assert plan["agents"]
    for agent in plan["agents"]:
        assert isinstance(agent["name"], str)
        assert isinstance(agent["score"], float)
        assert isinstance(agent["reasons"], list)
        assert all(isinstance(r, str) for r in agent["reasons"])
    assert plan["stages"]
    names = [s["name"] for s in plan["stages"]]
    assert names == sorted(names, key=STAGE_ORDER.index)  # stages in workflow order
    chosen = {a["name"] for a in plan["agents"]}
    staged: set[str] = set()
    for stage in plan["stages"]:
        assert isinstance(stage["name"], str)
        assert stage["mode"] in {"parallel", "sequential"}
        assert isinstance(stage["agents"], list) and stage["agents"]
        assert isinstance(stage["sync_point"], bool)
        gate = stage["gate"]
        assert gate is None or (isinstance(gate["name"], str) and isinstance(gate["checks"], list))
        assert [t["agent"] for t in stage["tasks"]] == stage["agents"]
        for task in stage["tasks"]:
            assert isinstance(task["id"], str)
            assert isinstance(task["agent"], str)
            assert isinstance(task["brief"], str) and plan["request"] in task["brief"]
            assert isinstance(task["depends_on"], list)
        staged.update(stage["agents"])
    assert staged == chosen, "every chosen agent has a task, and only chosen agents"
    assert isinstance(plan["estimated_hours"], float) and plan["estimated_hours"] > 0


def test_plan_mermaid(run_cli: RunCli, builtin_planner: Planner) -> None:
    """``--format mermaid`` is a flowchart naming every agent of the plan."""
    proc = run_cli("plan", LOGIN, "--format", "mermaid")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("flowchart")
    for agent in _same_plan(builtin_planner, LOGIN)["agents"]:
        assert agent["name"] in proc.stdout


def test_plan_claude_prompt_mentions_every_agent(
    run_cli: RunCli, builtin_planner: Planner
) -> None:
    """``--format claude`` is a prompt that names every chosen agent as a subagent."""
    request = ("Build a multi-tenant SaaS billing platform with Stripe, a React dashboard "
               "and audit logs")
    plan = _same_plan(builtin_planner, request)
    proc = run_cli("plan", request, "--format", "claude")
    assert proc.returncode == 0, proc.stderr
    assert request in proc.stdout
    for agent in plan["agents"]:
        assert f"`{agent['name']}`" in proc.stdout
    assert plan["id"] in proc.stdout


def test_plan_explain_shows_reasons(run_cli: RunCli, builtin_planner: Planner) -> None:
    """``--explain`` prints the analysis reasons, each agent's reasons and why the agents
    that scored were not chosen."""
    plan = _same_plan(builtin_planner, LOGIN)
    assert plan["rejected"], "the login request has near-miss agents to explain"
    proc = run_cli("plan", LOGIN, "--explain")
    assert proc.returncode == 0, proc.stderr
    for reason in plan["analysis"]["reasons"]:
        assert reason in proc.stdout
    for agent in plan["agents"]:
        assert "; ".join(agent["reasons"])[:60] in proc.stdout
    not_chosen = proc.stdout.split("Not chosen:", 1)[1].split("Stages:", 1)[0]
    for rejected in plan["rejected"]:
        assert rejected["name"] in not_chosen and rejected["reason"] in not_chosen
    plain = run_cli("plan", LOGIN).stdout
    assert plan["analysis"]["reasons"][0] not in plain and "Not chosen:" not in plain


def test_plan_reads_long_request_from_stdin(run_cli: RunCli) -> None:
    """``plan -`` reads the request from stdin, whitespace-normalised, however long."""
    paragraph = (
        "The nightly ETL job that loads orders from PostgreSQL into the warehouse now takes\n"
        "six hours instead of one.  We need to find out why and make it fast again.\n\n"
    )
    text = paragraph * 40
    plan = _plan_json(run_cli, "-", stdin=text)
    assert plan["request"] == " ".join(text.split())
    assert plan["agents"]


def test_plan_stdin_invalid_utf8(run_cli: RunCli) -> None:
    """Invalid UTF-8 on stdin is an input error (exit 2) naming the byte offset."""
    proc = run_cli("plan", "-", stdin=b"fix the \xff login")
    assert proc.returncode == 2
    assert "UTF-8" in proc.stderr and "byte 8" in proc.stderr


def test_batch_one_json_per_line(
    run_cli: RunCli, workdir: Path, builtin_planner: Planner
) -> None:
    """``--batch`` writes one plan per input line, in order, with the input's id."""
    rows: list[dict[str, Any]] = [
        {"id": "r1", "request": LOGIN, "lang": "zh"},
        {"id": 2, "request": "Add dark mode to the settings page"},
        {"id": "r3", "request": "Our Kafka consumers lag by hours during peak traffic"},
    ]
    path = workdir / "requests.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n",
                    encoding="utf-8")
    proc = run_cli("plan", "--batch", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    plans = [json.loads(line) for line in lines]
    assert [p["input_id"] for p in plans] == ["r1", 2, "r3"]
    assert [p["request"] for p in plans] == [r["request"] for r in rows]
    single = _same_plan(builtin_planner, LOGIN)
    assert plans[0]["id"] == single["id"] and plans[0]["agents"] == single["agents"]


def test_batch_reports_bad_lines_and_plans_the_rest(run_cli: RunCli, workdir: Path) -> None:
    """Invalid UTF-8 and invalid JSON lines are reported by number; the others are planned;
    the exit status is 1."""
    path = workdir / "mixed.jsonl"
    path.write_bytes(
        b'{"id": "ok1", "request": "Add a CSV export to the reports page"}\n'
        b'{"id": "bad-utf8", "request": "fix \xff\xfe login"}\n'
        b'{"id": "ok2", "request": "\xe4\xbf\xae\xe5\xa4\x8d\xe6\x94\xaf\xe4\xbb\x98\xe5\x9b\x9e'
        b'\xe8\xb0\x83\xe8\xb6\x85\xe6\x97\xb6"}\n'
        b'{"id": "bad-json", "request": \n'
        b'{"id": "ok3", "request": "Write API docs for the orders service"}\n'
    )
    proc = run_cli("plan", "--batch", str(path))
    assert proc.returncode == 1
    ids = [json.loads(line)["input_id"] for line in proc.stdout.splitlines()]
    assert ids == ["ok1", "ok2", "ok3"]
    assert f"{path}:2: invalid UTF-8" in proc.stderr
    assert f"{path}:4: invalid JSON" in proc.stderr
    assert ":1:" not in proc.stderr and ":3:" not in proc.stderr and ":5:" not in proc.stderr


def test_batch_from_stdin_reports_unplannable_objects(run_cli: RunCli) -> None:
    """``--batch -`` reads stdin; an empty request, a non-object and a missing "request" are
    reported with their line numbers; the valid lines are planned."""
    lines = [
        json.dumps({"id": "a", "request": "Add pagination to GET /orders"}),
        json.dumps({"id": "empty", "request": "   "}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "norequest", "text": "x"}),
        json.dumps({"request": "给订单列表加分页"}),
    ]
    proc = run_cli("plan", "--batch", "-", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 1
    plans = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [p["input_id"] for p in plans] == ["a", None]
    assert "-:2: request is empty" in proc.stderr
    assert "-:3: expected an object" in proc.stderr and "-:4: expected an object" in proc.stderr
    assert "3 line(s) could not be planned" in proc.stderr


@pytest.mark.parametrize("request_text", ["", "   \n\t  "])
def test_empty_request_is_exit_2_one_line(run_cli: RunCli, request_text: str) -> None:
    """An empty or whitespace request exits 2 with a one-line message, no traceback."""
    proc = run_cli("plan", request_text)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "empty" in proc.stderr


def test_empty_stdin_request_is_exit_2(run_cli: RunCli) -> None:
    """``plan -`` with only whitespace on stdin is the same error as an empty argument."""
    proc = run_cli("plan", "-", stdin="  \n\n ")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "empty" in proc.stderr


def test_unknown_format_lists_valid_values(run_cli: RunCli) -> None:
    """An unknown ``--format`` is a usage error that lists every valid format."""
    proc = run_cli("plan", LOGIN, "--format", "yaml")
    assert proc.returncode == 2
    for fmt in ("text", "json", "mermaid", "claude"):
        assert fmt in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decisions", "list", "--limit", "0"), "0 is not in the range 1<=x<=10000"),
        (("decisions", "list", "--limit", "ten"), "'ten' is not a valid integer"),
        (("run", "x", "--timeout", "nan"), "'nan' is not a finite number"),
        (("run", "x", "--max-cost", "inf"), "'inf' is not a finite number"),
        (("run", "x", "--backoff", "-1"), "-1 is not in the range x>=0"),
        (("run", "x", "--memory-limit", "lots"), "invalid memory limit 'lots'"),
    ],
)
def test_numeric_options_reject_bad_values(
    run_cli: RunCli, args: tuple[str, ...], message: str
) -> None:
    """Out-of-range, malformed and non-finite numbers are usage errors naming the option."""
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_one_megabyte_request_is_planned_with_capped_analysis(run_cli: RunCli) -> None:
    """A 1 MB request via stdin gives a plan; the analysis says how much of it was read."""
    text = ("Migrate the billing service from MySQL to PostgreSQL without downtime. " * 15_000)
    text = text[: 1024 * 1024]
    plan = _plan_json(run_cli, "-", stdin=text)
    assert plan["agents"] and plan["stages"]
    assert len(plan["request"]) > 1_000_000
    cap = [r for r in plan["analysis"]["reasons"] if r.startswith("analysed the first")]
    assert cap and f"of {len(plan['request']):,} chars" in cap[0]


def test_one_megabyte_request_in_batch(run_cli: RunCli, workdir: Path) -> None:
    """A 1 MB request inside ``--batch`` is planned like any other line."""
    path = workdir / "big.jsonl"
    big = "Our Android app crashes on startup after the last release. " * 18_000
    path.write_text(json.dumps({"id": "big", "request": big}) + "\n"
                    + json.dumps({"id": "small", "request": "Fix a typo in the README"}) + "\n",
                    encoding="utf-8")
    proc = run_cli("plan", "--batch", str(path))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["input_id"] for line in proc.stdout.splitlines()] == ["big", "small"]


def test_agents_list(run_cli: RunCli) -> None:
    """``agents list`` prints one line per built-in agent (no user agents in this HOME)."""
    proc = run_cli("agents", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 49
    assert all(line.split()[3] == "built-in" for line in lines)


def test_agents_list_by_category(run_cli: RunCli) -> None:
    """``--category quality`` lists the quality agents and nothing else."""
    proc = run_cli("agents", "list", "--category", "quality")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert {r[0] for r in rows} == QUALITY_AGENTS
    assert {r[1] for r in rows} == {"quality"}
    as_json = json.loads(run_cli("agents", "list", "--category", "quality",
                                 "--format", "json").stdout)
    assert {a["name"] for a in as_json} == QUALITY_AGENTS


def test_agents_list_unknown_category(run_cli: RunCli) -> None:
    """An unknown category exits 2 and lists the valid ones."""
    proc = run_cli("agents", "list", "--category", "astrology")
    assert proc.returncode == 2
    for category in ("business", "creative", "data-ai", "development", "infrastructure",
                     "quality", "specialized"):
        assert category in proc.stderr


def test_agents_show(run_cli: RunCli) -> None:
    """``agents show`` prints metadata, bilingual keywords and the system prompt."""
    proc = run_cli("agents", "show", "security-auditor")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "name:        security-auditor" in out
    assert "category:    quality" in out
    assert "origin:      built-in" in out
    assert "jwt" in out and "安全" in out
    assert len(out.splitlines()) > 12  # the prompt body follows the metadata


def test_agents_show_unknown(run_cli: RunCli) -> None:
    """An unknown agent name exits 3 and lists the valid names."""
    proc = run_cli("agents", "show", "nope")
    assert proc.returncode == 3
    assert "'nope'" in proc.stderr
    assert "security-auditor" in proc.stderr and "python-pro" in proc.stderr


def test_version(run_cli: RunCli) -> None:
    """``--version`` and ``-V`` print the package version."""
    for flag in ("--version", "-V"):
        proc = run_cli(flag)
        assert proc.returncode == 0
        assert proc.stdout.strip() == f"perfect21 {__version__}"


def test_help_lists_every_command(run_cli: RunCli) -> None:
    """``--help`` lists every command of the table; ``plan --help`` shows examples."""
    proc = run_cli("--help")
    assert proc.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in proc.stdout
    plan_help = run_cli("plan", "--help").stdout
    assert "Examples:" in plan_help and "--format" in plan_help and "--batch" in plan_help
    assert "Examples:" in run_cli("agents", "--help").stdout


def test_plan_on_a_terminal_uses_rich(workdir: Path) -> None:
    """On a TTY the plan is drawn as a rich tree with every stage and agent."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    chunks: list[bytes] = []
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "perfect21", "plan", LOGIN, "--explain"],
            stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=workdir,
            env=env,
        ) as proc:
            os.close(slave)
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.stderr is not None
            errors = proc.stderr.read().decode("utf-8", "replace")
            assert proc.wait(timeout=30) == 0, errors
    finally:
        os.close(master)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert "├" in out or "└" in out  # tree guides: the rich view, not the plain text
    assert "Plan plan-" not in out
    assert "security-auditor" in out and "verify" in out


def test_batch_into_a_closed_pipe_is_not_an_error(shared_dir: Path, workdir: Path) -> None:
    """``perfect21 plan --batch big.jsonl | head -1``: the reader closing the pipe early is
    not an error: the process ends quietly like other Unix filters (exit 0 or killed by
    SIGPIPE, as ``head`` expects), with nothing on stderr."""
    import os
    import signal
    import subprocess
    import sys

    sample = shared_dir / "data" / "routing_sample.jsonl"
    with subprocess.Popen([sys.executable, "-m", "perfect21", "plan", "--batch", str(sample)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir,
                          env=dict(os.environ)) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(100)
        proc.stdout.close()
        errors = proc.stderr.read().decode("utf-8", "replace")
        assert proc.wait(timeout=30) in (0, -signal.SIGPIPE), errors
    assert errors == ""


def test_only_the_chosen_command_is_imported(workdir: Path) -> None:
    """The root parser lists every command from the table but imports only the one run (and
    ``bench`` only the chosen area)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from perfect21.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(m for m in sys.modules\n"
        "                      if m.startswith(('perfect21.cli', 'perfect21.bench')))))\n"
    )

    def loaded(*args: str) -> set[str]:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, cwd=workdir, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return set(done.stdout.splitlines()[-1].split())  # the modules, printed last

    base = {"perfect21.cli", "perfect21.cli._app", "perfect21.cli._common"}
    assert loaded("plan", "fix the login page", "--format", "json") == {*base, "perfect21.cli.plan"}
    assert loaded("--help") == base
    assert loaded("bench", "startup", "--help") == {
        *base, "perfect21.cli.bench", "perfect21.bench", "perfect21.bench.startup"}


def test_every_command_handler_takes_its_options() -> None:
    """Each command's parsed options (with its group's, e.g. ``decisions --db``) are exactly
    the keyword parameters of the function that runs it."""
    import argparse
    import importlib
    import inspect

    from perfect21.cli._common import Commands

    def leaves(parser: argparse.ArgumentParser, path: str, inherited: set[str]
               ) -> list[tuple[str, Any, set[str]]]:
        dests = inherited | {a.dest for a in parser._actions
                             if a.option_strings != ["-h", "--help"]
                             and not a.dest.startswith("_") and a.dest != "version"}
        groups = [a for a in parser._actions if isinstance(a, Commands)]
        if not groups:
            return [(path, parser.get_default("_handler"), dests)]
        return [leaf for name, sub in groups[0].choices.items()
                for leaf in leaves(sub, f"{path} {name}", dests)]

    from perfect21.cli.bench import AREAS

    found = []
    targets = [t for name, (t, _) in COMMANDS.items() if name != "bench"]
    for target in [*targets, *(t for t, _ in AREAS.values())]:
        module, attr = target.split(":")
        parser = argparse.ArgumentParser()
        getattr(importlib.import_module(module), attr)(parser)
        found += leaves(parser, target, set())
    assert len(found) == 29
    for path, handler, dests in found:
        assert set(inspect.signature(handler).parameters) == dests, path
