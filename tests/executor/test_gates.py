"""Gate parsing (pure) and gate commands as real processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from perfect21._errors import InputError, RunnerError
from perfect21.executor.gates import (
    GateCommand,
    parse_gate,
    parse_metric,
    plan_gates,
    preflight_gate,
    run_gate,
)
from perfect21.planner.models import Gate, GateCheck

from .conftest import make_plan


def test_parse_gate_reads_an_optional_threshold() -> None:
    assert parse_gate("pytest -q") == GateCommand("pytest -q", "pytest -q")
    gate = parse_gate("coverage report >= 87.5%")
    assert (gate.command, gate.threshold) == ("coverage report", 87.5)
    with pytest.raises(InputError, match="empty command"):
        parse_gate(">= 80")
    with pytest.raises(InputError, match="No closing quotation"):
        parse_gate("pytest 'unclosed")


def test_parse_metric_prefers_the_coverage_total_line() -> None:
    report = "Name    Stmts   Miss  Cover\nmod.py    10      1    90%\nTOTAL    200     26    87%\n"
    assert parse_metric(report) == 87.0
    assert parse_metric("lines: 12.5% covered, branches 40%") == 40.0
    assert parse_metric("no numbers here") is None


def test_plan_gate_checks_with_a_command_run_at_their_stage() -> None:
    plan = make_plan([["a"], ["b"]])
    stage = plan.stages[0]

    gated = stage.replace(gate=Gate("quality", (GateCheck("tests", "pytest -q"),
                                                 GateCheck("coverage", "", 80.0))))
    plan = plan.replace(stages=(gated, plan.stages[1]))
    assert plan_gates(plan) == [GateCommand("tests", "pytest -q", "stage1", None)]


def test_gate_preflight_finds_missing_executables() -> None:
    with pytest.raises(RunnerError, match="not found on PATH"):
        preflight_gate(parse_gate("no-such-linter-xyz ."), shell=False)
    preflight_gate(parse_gate("no-such-linter-xyz ."), shell=True)  # the shell decides


async def test_run_gate_passes_fails_and_times_out(tmp_path: Path) -> None:
    ok = await run_gate(parse_gate(f"{sys.executable} -c \"print('TOTAL 5 0 95%')\" >= 90"),
                        stage="", workdir=tmp_path, out_dir=tmp_path / "g", timeout_s=30)
    assert ok.passed and ok.value == 95.0 and ok.exit_code == 0
    low = await run_gate(parse_gate(f"{sys.executable} -c \"print('TOTAL 5 4 20%')\" >= 90"),
                         stage="", workdir=tmp_path, out_dir=tmp_path / "g", timeout_s=30)
    assert not low.passed and low.reason == "20% < threshold 90%"
    crash = await run_gate(parse_gate(f"{sys.executable} -c \"raise SystemExit(3)\""),
                           stage="s", workdir=tmp_path, out_dir=tmp_path / "g", timeout_s=30)
    assert not crash.passed and crash.reason == "exit code 3"
    hang = await run_gate(parse_gate(f"{sys.executable} -c \"import time; time.sleep(60)\""),
                          stage="s", workdir=tmp_path, out_dir=tmp_path / "g", timeout_s=0.5)
    assert not hang.passed and "timed out" in hang.reason
