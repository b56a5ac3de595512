"""The agent catalog: built-in agents, user agents, overrides, broken files, the disk cache."""

from __future__ import annotations

import json
import marshal
import re
from pathlib import Path

import pytest

from perfect21._errors import CatalogError
from perfect21.planner import Planner
from perfect21.planner.catalog import load_catalog
from perfect21.planner.text import is_cjk

from .conftest import RunCli, write_agent

# DESIGN.md, "The agent catalog": category -> required built-in names.
REQUIRED: dict[str, set[str]] = {
    "business": {"api-designer", "business-analyst", "product-strategist", "project-manager",
                 "requirements-analyst", "technical-writer"},
    "creative": {"ux-designer"},
    "data-ai": {"ai-engineer", "analytics-engineer", "data-engineer", "data-scientist",
                "mlops-engineer", "prompt-engineer"},
    "development": {"angular-expert", "backend-architect", "database-specialist",
                    "frontend-specialist", "fullstack-engineer", "golang-pro", "java-enterprise",
                    "javascript-pro", "nextjs-pro", "python-pro", "react-pro", "rust-pro",
                    "typescript-pro", "vue-specialist"},
    "infrastructure": {"cloud-architect", "deployment-manager", "devops-engineer",
                       "incident-responder", "kubernetes-expert", "monitoring-specialist",
                       "performance-engineer"},
    "quality": {"accessibility-auditor", "code-reviewer", "e2e-test-specialist",
                "performance-tester", "security-auditor", "test-engineer"},
    "specialized": {"blockchain-developer", "documentation-writer", "ecommerce-expert",
                    "embedded-engineer", "error-detective", "fintech-specialist",
                    "game-developer", "healthcare-dev", "mobile-developer"},
}
TERRAFORM_DESC = (
    "Writes and reviews Terraform modules for AWS and GCP: infrastructure as code, remote "
    "state, workspaces, drift detection and plan/apply pipelines."
)
TERRAFORM_ZH = (
    "我们的云资源都是手工在控制台点出来的，想用 Terraform 做基础设施即代码，统一管理所有环境"
)


def test_builtin_catalog_has_every_design_agent() -> None:
    """All 49 names of DESIGN.md are built in, in their category, with EN and ZH keywords."""
    catalog = load_catalog(user=False, cache_dir=None)
    assert catalog.problems == ()
    by_name = {a.name: a for a in catalog.agents}
    assert set(by_name) == set().union(*REQUIRED.values())
    assert len(by_name) == 49
    for category, names in REQUIRED.items():
        for name in names:
            agent = by_name[name]
            assert agent.category == category, name
            assert agent.builtin and agent.description and agent.prompt, name
            assert len(agent.keywords) >= 3, name
            assert agent.keywords_zh and all(is_cjk(k) for k in agent.keywords_zh), name


def test_required_names_match_design_doc(shared_dir: Path) -> None:
    """The list above is the one in ../shared/DESIGN.md (guards against drift)."""
    text = (shared_dir / "DESIGN.md").read_text(encoding="utf-8")
    section = text.split("## The agent catalog", 1)[1].split("- User agents", 1)[0]
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"([a-z-]+): ([a-z0-9\s-]+?)(?: ·|$)", section.replace("\n", " ")):
        found[match.group(1)] = set(match.group(2).split())
    assert found == REQUIRED


def test_project_user_agent_is_loaded_and_routed_from_chinese(
    run_cli: RunCli, workdir: Path
) -> None:
    """A project agent with only name + English description is listed and chosen for a
    Chinese request on its subject."""
    write_agent(workdir / ".claude" / "agents" / "infra", "terraform-wizard", TERRAFORM_DESC)
    shown = run_cli("agents", "show", "terraform-wizard")
    assert shown.returncode == 0, shown.stderr
    assert "origin:      user" in shown.stdout and "category:    custom" in shown.stdout
    proc = run_cli("plan", TERRAFORM_ZH, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    chosen = [a["name"] for a in json.loads(proc.stdout)["agents"]]
    assert "terraform-wizard" in chosen


def test_home_user_agent_is_loaded(run_cli: RunCli, isolated_home: Path) -> None:
    """``~/.claude/agents`` (HOME points into the test's tmp dir) is a source too."""
    home = isolated_home.parent / "userhome"
    write_agent(home / ".claude" / "agents", "seo-auditor",
                "Audits websites for search engine optimisation: crawlability, sitemaps, "
                "meta tags, structured data and Core Web Vitals.")
    proc = run_cli("agents", "show", "seo-auditor")
    assert proc.returncode == 0, proc.stderr
    assert "origin:      user" in proc.stdout


def test_user_agent_overrides_builtin_of_same_name(run_cli: RunCli, workdir: Path) -> None:
    """A project agent named like a built-in replaces it; the catalog size is unchanged."""
    write_agent(workdir / ".claude" / "agents", "security-auditor",
                "Our in-house security reviewer following the ACME security handbook.")
    proc = run_cli("agents", "show", "security-auditor")
    assert proc.returncode == 0, proc.stderr
    assert "ACME security handbook" in proc.stdout
    assert "origin:      user" in proc.stdout
    assert len(run_cli("agents", "list").stdout.splitlines()) == 49


def test_agents_dir_is_repeatable_and_later_wins(run_cli: RunCli, workdir: Path) -> None:
    """``--agents-dir`` may be given several times; for the same name the later one wins."""
    first, second = workdir / "first", workdir / "second"
    write_agent(first, "spark-tuner", "Tunes Apache Spark jobs (first copy).")
    write_agent(second, "spark-tuner", "Tunes Apache Spark jobs (second copy).")
    write_agent(first, "flutter-dev", "Builds cross-platform mobile apps with Flutter and Dart.")
    a = run_cli("agents", "show", "spark-tuner", "--agents-dir", str(first),
                "--agents-dir", str(second))
    assert "(second copy)" in a.stdout
    b = run_cli("agents", "show", "spark-tuner", "--agents-dir", str(second),
                "--agents-dir", str(first))
    assert "(first copy)" in b.stdout
    listed = run_cli("agents", "list", "--agents-dir", str(first), "--agents-dir", str(second))
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert len(names) == 51 and "flutter-dev" in names and names.count("spark-tuner") == 1


def test_missing_agents_dir_is_not_found(run_cli: RunCli, workdir: Path) -> None:
    """A ``--agents-dir`` that does not exist is exit 3 naming the path."""
    proc = run_cli("plan", "add a button", "--agents-dir", str(workdir / "nowhere"))
    assert proc.returncode == 3
    assert "nowhere" in proc.stderr


def test_no_builtin_uses_only_user_agents(run_cli: RunCli, workdir: Path) -> None:
    """``--no-builtin`` plans with the user's agents only."""
    mine = workdir / "mine"
    write_agent(mine, "spark-tuner", "Tunes Apache Spark jobs: partitions, shuffles, skew, "
                "executor memory and cluster sizing for big data pipelines.")
    write_agent(mine, "flutter-dev", "Builds cross-platform mobile apps with Flutter and Dart.")
    listed = run_cli("agents", "list", "--no-builtin", "--agents-dir", str(mine))
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["flutter-dev",
                                                                        "spark-tuner"]
    proc = run_cli("plan", "Spark 任务数据倾斜严重，shuffle 太慢，帮忙调优", "--no-builtin",
                   "--agents-dir", str(mine), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [a["name"] for a in json.loads(proc.stdout)["agents"]] == ["spark-tuner"]


def test_no_builtin_without_user_agents_is_a_clear_error(run_cli: RunCli) -> None:
    """With no built-ins and no user agents there is nothing to plan with: a clear error."""
    proc = run_cli("plan", "add a button", "--no-builtin")
    assert proc.returncode == 1
    assert "no agents" in proc.stderr and "Traceback" not in proc.stderr


def test_broken_agent_files_are_reported_and_the_rest_load(
    run_cli: RunCli, workdir: Path
) -> None:
    """Files without front matter, with invalid YAML or without a description are reported
    on stderr with their path and reason; the valid agents still load and plan."""
    mine = workdir / "mine"
    write_agent(mine, "graphql-gateway-expert",
                "Designs GraphQL gateways and federation: schemas, resolvers, N+1 batching.")
    (mine / "plain.md").write_text("Just some notes, no front matter.\n", encoding="utf-8")
    (mine / "badyaml.md").write_text("---\nname: [unclosed\ndescription: x\n---\nbody\n",
                                     encoding="utf-8")
    (mine / "nodesc.md").write_text("---\nname: nodesc\n---\nbody\n", encoding="utf-8")
    proc = run_cli("agents", "list", "--agents-dir", str(mine))
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert "graphql-gateway-expert" in names and "nodesc" not in names and len(names) == 50
    problems = dict(
        line.removeprefix("warning: skipped agent file ").split(": ", 1)
        for line in proc.stderr.splitlines()
    )
    assert "front matter" in problems[str(mine / "plain.md")]
    assert "invalid YAML" in problems[str(mine / "badyaml.md")]
    assert "description" in problems[str(mine / "nodesc.md")]
    assert len(problems) == 3
    # A second (cached) load reports the same problems.
    again = run_cli("plan", "add a GraphQL gateway", "--agents-dir", str(mine))
    assert again.returncode == 0
    assert again.stderr.count("warning: skipped agent file") == 3


def test_catalog_cache_is_written_read_and_rebuilt_when_corrupt(
    run_cli: RunCli, isolated_home: Path
) -> None:
    """The compiled catalog is written under $PERFECT21_HOME/catalog/; a second process
    reads it instead of rebuilding; a corrupt cache file is ignored and rewritten."""
    own = {"PERFECT21_HOME": str(isolated_home)}
    first = run_cli("plan", "add a button", "--format", "json", env=own)
    assert first.returncode == 0, first.stderr
    files = list((isolated_home / "catalog").glob("*.marshal"))
    assert len(files) == 1
    cached = marshal.loads(files[0].read_bytes())
    assert {"agents", "index", "version"} <= set(cached)
    assert cached["version"] == json.loads(first.stdout)["catalog_version"]
    # Mark the cache: a process that reads it reports the marked version.
    cached["version"] = "cachedmarker"
    files[0].write_bytes(marshal.dumps(cached))
    second = run_cli("plan", "add a button", "--format", "json", env=own)
    assert json.loads(second.stdout)["catalog_version"] == "cachedmarker"
    # Corrupt it (garbage, then a truncated file, then valid marshal data of the wrong
    # shape): each time the next process ignores it, rebuilds and rewrites a valid file.
    whole = files[0].read_bytes()
    for damage in (b"\x00{not marshal", whole[: len(whole) // 2], marshal.dumps([1, 2])):
        files[0].write_bytes(damage)
        again = run_cli("plan", "add a button", "--format", "json", env=own)
        assert again.returncode == 0 and again.stderr == ""
        assert json.loads(again.stdout) == json.loads(first.stdout)
        assert marshal.loads(files[0].read_bytes())["version"] != "cachedmarker"


def test_cache_key_follows_agent_file_content(tmp_path: Path) -> None:
    """Editing a user agent file changes the cache key: the edit is seen, not a stale index."""
    mine = tmp_path / "mine"
    cache = tmp_path / "cache"
    path = write_agent(mine, "seo-auditor", "Audits websites for search engine optimisation.")
    one = load_catalog(user=False, extra_dirs=[mine], cache_dir=cache)
    path.write_text(path.read_text(encoding="utf-8").replace("optimisation", "ranking"),
                    encoding="utf-8")
    two = load_catalog(user=False, extra_dirs=[mine], cache_dir=cache)
    assert one.version != two.version
    assert "ranking" in two.require("seo-auditor").description
    assert len(list(cache.glob("*.marshal"))) == 2


def test_load_catalog_without_agents_raises(tmp_path: Path) -> None:
    """In-process, an empty catalog is a CatalogError (the CLI maps it to exit 1)."""
    with pytest.raises(CatalogError):
        load_catalog(builtin=False, user=False, project_dir=tmp_path, cache_dir=None)


def test_user_agent_scores_by_description_only(tmp_path: Path) -> None:
    """An agent without keywords gets its score from its description (BM25) and the
    bilingual lexicon, and the plan says so in its reasons."""
    mine = tmp_path / "mine"
    write_agent(mine, "terraform-wizard", TERRAFORM_DESC)
    planner = Planner(load_catalog(user=False, extra_dirs=[mine], cache_dir=None))
    plan = planner.plan(TERRAFORM_ZH)
    choice = next(a for a in plan.agents if a.name == "terraform-wizard")
    assert any("relevance" in r for r in choice.reasons)


def test_unquoted_colon_in_description_is_reported_with_its_line(tmp_path: Path) -> None:
    """A plain YAML description containing ": " is invalid YAML (Claude Code rejects it too):
    the file is skipped and reported, the other agents load."""
    mine = tmp_path / "mine"
    mine.mkdir()
    bad = mine / "colon.md"
    bad.write_text("---\nname: colon\ndescription: Writes Terraform: modules\n---\nbody\n",
                   encoding="utf-8")
    write_agent(mine, "flutter-dev", "Builds cross-platform mobile apps with Flutter.")
    catalog = load_catalog(user=False, extra_dirs=[mine], cache_dir=None)
    assert catalog.get("flutter-dev") is not None and catalog.get("colon") is None
    (problem,) = catalog.problems
    assert problem.path == str(bad) and "invalid YAML" in problem.reason


def test_yaml_error_line_number_is_the_file_line(tmp_path: Path) -> None:
    """The line number in an invalid-YAML report is the line of the agent file (line 3 is
    the description line here)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "colon.md").write_text(
        "---\nname: colon\ndescription: Writes Terraform: modules\n---\nbody\n",
        encoding="utf-8")
    write_agent(mine, "flutter-dev", "Builds cross-platform mobile apps with Flutter.")
    catalog = load_catalog(user=False, extra_dirs=[mine], cache_dir=None)
    assert catalog.problems[0].reason.endswith("at line 3")


def test_cached_catalog_reports_this_projects_paths(tmp_path: Path) -> None:
    """Two projects with identical agent files share a PERFECT21_HOME: each one's agent
    sources and load problems name its own files, not the other project's."""
    cache = tmp_path / "home" / "catalog"
    sources = []
    for project in ("p1", "p2"):
        agents = tmp_path / project / ".claude" / "agents"
        write_agent(agents, "x-agent", "Does x things.")
        (agents / "broken.md").write_text("no front matter\n", encoding="utf-8")
        catalog = load_catalog(project_dir=tmp_path / project, cache_dir=cache)
        sources.append(catalog.require("x-agent").source)
        assert [p.path for p in catalog.problems] == [str(agents / "broken.md")]
    assert sources == [str(tmp_path / p / ".claude" / "agents" / "x-agent.md")
                       for p in ("p1", "p2")]


def test_every_builtin_keyword_can_match() -> None:
    """Every keyword authored for a built-in agent becomes a key of the compiled index (a
    keyword the scan can never match is dead weight that misleads the catalog's readers)."""
    from perfect21.planner.index import _key

    catalog = load_catalog(user=False, cache_dir=None)
    dead = {a.name: [k for k in (*a.keywords, *a.keywords_zh) if not _key(k)]
            for a in catalog.agents}
    assert {name: terms for name, terms in dead.items() if terms} == {}
