"""Quality gates: commands run at a stage's sync point, with pass criteria.

A gate passes when its command exits 0 and, if it has a threshold, the number parsed from its
output is at least the threshold. The number is the percentage on coverage's ``TOTAL`` line
(``TOTAL   1234   160   87%``) or, failing that, the last percentage printed.

On the command line a threshold is written after the command: ``--gate "coverage report >= 85"``.
Gates from ``--gate`` run at the last sync point; a plan's own gate checks that carry a
command run at their stage's sync point.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from perfect21._errors import InputError, RunnerError
from perfect21.executor.runners import _which, run_process
from perfect21.executor.tasks import GateResult, tail
from perfect21.planner.models import Plan

__all__ = ["FINAL_STAGE", "GateCommand", "parse_gate", "parse_metric", "plan_gates", "run_gate"]

FINAL_STAGE = ""  # a gate with this stage runs after the last stage

_THRESHOLD = re.compile(r"\s*>=\s*(\d+(?:\.\d+)?)\s*%?\s*$")
_TOTAL = re.compile(r"^TOTAL\b.*?(\d+(?:\.\d+)?)%\s*$", re.MULTILINE)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")


@dataclass(frozen=True, slots=True)
class GateCommand:
    name: str
    command: str
    stage: str = FINAL_STAGE
    threshold: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "command": self.command, "stage": self.stage,
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> GateCommand:
        threshold = data.get("threshold")
        return cls(str(data["name"]), str(data["command"]), str(data.get("stage", "")),
                   None if threshold is None else float(str(threshold)))


def parse_gate(text: str, *, stage: str = FINAL_STAGE) -> GateCommand:
    """``"pytest -q"`` or ``"coverage report >= 85"`` → a gate command."""
    command, threshold = text.strip(), None
    match = _THRESHOLD.search(command)
    if match:
        threshold = float(match.group(1))
        command = command[: match.start()].strip()
    if not command:
        raise InputError(f"--gate {text!r}: empty command")
    try:
        shlex.split(command)
    except ValueError as exc:
        raise InputError(f"--gate {text!r}: {exc}") from None
    return GateCommand(name=command, command=command, stage=stage, threshold=threshold)


def plan_gates(plan: Plan) -> list[GateCommand]:
    """The plan's gate checks that carry a command, at their own stage's sync point."""
    gates = []
    for stage in plan.stages:
        if stage.gate is None:
            continue
        for check in stage.gate.checks:
            if check.command:
                gates.append(GateCommand(check.name, check.command, stage.name,
                                         check.threshold))
    return gates


def preflight_gate(gate: GateCommand, *, shell: bool) -> None:
    if shell:
        return
    words = shlex.split(gate.command)
    if _which(words[0]) is None:
        raise RunnerError(f"gate {gate.name!r}: executable {words[0]!r} not found on PATH")


def parse_metric(output: str) -> float | None:
    """The coverage ``TOTAL`` percentage, else the last percentage in ``output``."""
    total = _TOTAL.findall(output)
    if total:
        return float(total[-1])
    found = _PERCENT.findall(output)
    return float(found[-1]) if found else None


async def run_gate(gate: GateCommand, *, stage: str, workdir: Path, out_dir: Path,
                   timeout_s: float, shell: bool = False) -> GateResult:
    import os

    argv = (("/bin/sh", "-c", gate.command) if shell else tuple(shlex.split(gate.command)))
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", gate.name)[:60] or "gate"
    started = time.time()
    out = await run_process(argv, cwd=workdir, env=dict(os.environ),
                            stdout_path=out_dir / f"{stage or 'final'}-{slug}.stdout",
                            stderr_path=out_dir / f"{stage or 'final'}-{slug}.stderr",
                            timeout_s=timeout_s)
    output = out.stdout + ("\n" + out.stderr if out.stderr else "")
    value = parse_metric(output) if gate.threshold is not None else None
    passed, reason = out.exit_code == 0, ""
    if out.error:
        passed, reason = False, out.error
    elif out.exit_code != 0:
        reason = f"exit code {out.exit_code}"
    elif gate.threshold is not None:
        if value is None:
            passed, reason = False, "no percentage found in the output"
        elif value < gate.threshold:
            passed, reason = False, f"{value:g}% < threshold {gate.threshold:g}%"
    return GateResult(stage=stage, name=gate.name, command=gate.command, passed=passed,
                      exit_code=out.exit_code, value=value, threshold=gate.threshold,
                      output_tail=tail(output, 2000), started_at=started,
                      duration_s=time.time() - started, reason=reason)
