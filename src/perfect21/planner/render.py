"""Render a plan: plain text, rich (TTY only, imported lazily), JSON, Mermaid, Claude prompt."""

from __future__ import annotations

import json
from typing import Any

from perfect21.planner.models import Plan, Stage

__all__ = ["FORMATS", "render", "render_rich"]

FORMATS = ("text", "json", "mermaid", "claude")


def render(plan: Plan, fmt: str, *, explain: bool = False) -> str:
    if fmt == "json":
        return to_json(plan)
    if fmt == "mermaid":
        return to_mermaid(plan)
    if fmt == "claude":
        return to_claude(plan)
    return to_text(plan, explain=explain)


def to_json(plan: Plan, *, indent: int | None = 2, extra: dict[str, Any] | None = None) -> str:
    data = plan.to_dict()
    if extra:
        data.update(extra)
    return json.dumps(data, ensure_ascii=False, indent=indent)


def _gate_text(stage: Stage) -> str:
    if stage.gate is None:
        return ""
    checks = ", ".join(
        c.name + (f" ≥ {c.threshold:g}" if c.threshold is not None else "")
        for c in stage.gate.checks
    )
    return f"gate {stage.gate.name}: {checks}"


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_text(plan: Plan, *, explain: bool = False) -> str:
    a = plan.analysis
    lines = [
        f"Plan {plan.id}  ({a.complexity.value}, {len(plan.agents)} agents, "
        f"~{plan.estimated_hours:g} h, catalog {plan.catalog_version})",
        f"Request: {_short(plan.request)}",
        f"Analysis: domains {', '.join(a.domains) or '-'}; stack {', '.join(a.stack) or '-'}; "
        f"~{a.estimated_loc} LOC in {a.modules} module(s)",
    ]
    if explain:
        lines += ["  why: " + r for r in a.reasons]
    lines.append("Agents:")
    width = max((len(c.name) for c in plan.agents), default=10)
    for choice in plan.agents:
        why = "; ".join(choice.reasons) if explain else (choice.reasons[0] if choice.reasons
                                                         else "")
        lines.append(f"  {choice.name:<{width}}  {choice.score:6.2f}  {_short(why, 120)}")
    if explain and plan.rejected:
        lines.append("Not chosen:")
        for r in plan.rejected:
            lines.append(f"  {r.name:<{width}}  {r.score:6.2f}  {r.reason}")
    lines.append("Stages:")
    for number, stage in enumerate(plan.stages, 1):
        lines.append(f"  {number}. {stage.name} ({stage.mode.value}) — {stage.goal}")
        for task in stage.tasks:
            deps = f"  after {', '.join(task.depends_on)}" if explain and task.depends_on else ""
            lines.append(f"     - {task.agent}  [{task.id}, ~{task.estimated_hours:g} h]{deps}")
        marks = []
        if stage.sync_point:
            marks.append("sync point")
        if stage.gate is not None:
            marks.append(_gate_text(stage))
        if marks:
            lines.append("     ⇢ " + " · ".join(marks))
    return "\n".join(lines)


def render_rich(plan: Plan, *, explain: bool = False) -> None:
    """Print the plan as a rich tree (only called when stdout is a terminal)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    a = plan.analysis
    root = Tree(
        f"[bold]{escape(plan.id)}[/]  [cyan]{a.complexity.value}[/] · "
        f"{len(plan.agents)} agents · ~{plan.estimated_hours:g} h"
    )
    root.add(f"[dim]request[/] {escape(_short(plan.request))}")
    analysis = root.add(
        f"[dim]analysis[/] domains {escape(', '.join(a.domains) or '-')} · stack "
        f"{escape(', '.join(a.stack) or '-')} · ~{a.estimated_loc} LOC / {a.modules} modules"
    )
    if explain:
        for reason in a.reasons:
            analysis.add(escape(reason))
    scores = {c.name: c for c in plan.agents}
    for number, stage in enumerate(plan.stages, 1):
        node = root.add(f"[bold]{number}. {stage.name}[/] [dim]({stage.mode.value})[/]")
        for task in stage.tasks:
            choice = scores.get(task.agent)
            label = f"[green]{task.agent}[/] [dim]{choice.score:.2f}[/]" if choice else task.agent
            leaf = node.add(label)
            if explain and choice:
                for reason in choice.reasons:
                    leaf.add(f"[dim]{escape(reason)}[/]")
        if stage.gate is not None:
            node.add(f"[yellow]⇢ {escape(_gate_text(stage))}[/]")
    if explain and plan.rejected:
        rejected = root.add("[dim]not chosen[/]")
        for r in plan.rejected:
            rejected.add(f"{r.name} {r.score:.2f} — {escape(r.reason)}")
    Console().print(root)


def _mermaid_label(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")


def to_mermaid(plan: Plan) -> str:
    lines = ["flowchart LR"]
    previous = ""
    for number, stage in enumerate(plan.stages, 1):
        sid = f"S{number}"
        lines.append(f'  subgraph {sid}["{number}. {stage.name} ({stage.mode.value})"]')
        for t_number, task in enumerate(stage.tasks, 1):
            lines.append(f'    {sid}T{t_number}["{_mermaid_label(task.agent)}"]')
        lines.append("  end")
        node = sid
        if stage.gate is not None:
            gid = f"G{number}"
            lines.append(f'  {gid}{{{{"gate: {_mermaid_label(stage.gate.name)}"}}}}')
            lines.append(f"  {sid} --> {gid}")
            node = gid
        if previous:
            lines.append(f"  {previous} --> {sid}")
        previous = node
    return "\n".join(lines)


def to_claude(plan: Plan) -> str:
    """A prompt that tells Claude Code to execute the plan with its subagents."""
    out = [
        "Execute the following workflow with Claude Code subagents (the Task tool).",
        f"Request: {plan.request}",
        "",
        "Rules: run the stages in order. Inside a stage marked parallel, start all of its "
        "subagent tasks at once (several Task tool calls in one message). At a sync point wait "
        "until every task of the stage has finished, then check the gate; if a gate fails, "
        "stop and report which check failed instead of continuing.",
        "",
    ]
    for number, stage in enumerate(plan.stages, 1):
        out.append(f"## Stage {number}: {stage.name} ({stage.mode.value}) — {stage.goal}")
        for task in stage.tasks:
            out.append(f"- Use the `{task.agent}` subagent. Brief:")
            out.extend("    " + line for line in task.brief.splitlines())
        if stage.sync_point:
            out.append("- Sync point: wait for all tasks above before going on.")
        if stage.gate is not None:
            out.append(f"- Quality gate ({_gate_text(stage)}).")
        out.append("")
    out.append(
        f"When done, summarise what each subagent changed and whether every gate passed "
        f"(plan {plan.id})."
    )
    return "\n".join(out)
