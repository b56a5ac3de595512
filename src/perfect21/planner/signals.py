"""Complexity signals: words that say how big a piece of work is, in English and Chinese.

Compiled into the catalog index (one pass over the text finds them together with agent
keywords). Each signal names a kind of evidence; :mod:`perfect21.planner.analysis` weighs
them. Keep the lists general — they describe how people talk about scope, not any one task.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["COMPLEXITY_SIGNALS", "TAXONOMY_FILE"]

TAXONOMY_FILE = Path(__file__).resolve().parent / "taxonomy.json"

COMPLEXITY_SIGNALS: dict[str, tuple[str, ...]] = {
    # whole-system scope: several teams, components or phases
    "scope": (
        "architecture", "platform", "from scratch", "rewrite", "redesign", "re-architect",
        "overhaul", "entire", "whole", "end to end", "multi region", "multi-region",
        "multi tenant", "multi-tenant", "zero downtime", "zero-downtime", "roadmap",
        "migration plan", "microservice", "monolith", "distributed", "high availability",
        "disaster recovery", "compliance", "hipaa", "pci", "gdpr", "soc 2", "sox",
        "company-wide", "org-wide", "across all", "every service", "all service", "phased",
        "rollout plan", "cutover", "greenfield", "marketplace", "new product",
        "整体", "全部", "全站", "全链路", "重构", "重写", "从零", "从头", "零停机", "多租户",
        "高可用", "分布式", "微服务", "体系", "架构", "平台", "合规", "等保", "容灾",
        "多活", "异地", "中台", "一整套", "整套", "全面", "所有服务", "分阶段", "切换方案",
        "incrementally", "one at a time", "side by side", "strangler", "data residency",
        "逐步", "分批", "灰度", "并行运行", "双写",
    ),
    # planning or design work on top of implementation
    "planning": (
        "strategy", "design doc", "plan the", "proposal", "evaluate",
        "trade-off", "tradeoff", "postmortem", "post-mortem", "rollback plan",
        "方案", "规划", "设计", "评估", "选型", "复盘", "预案", "路线图",
    ),
    # small, local change
    "small": (
        "typo", "rename", "bump", "tweak", "small", "minor", "one line", "one-line",
        "single", "wording", "copy change", "label", "tooltip", "padding", "margin", "color",
        "colour", "font", "placeholder", "just", "quick", "simple", "a line", "the link",
        "broken link", "version number", "off by one", "off-by-one", "missing import",
        "错别字", "改一下", "顺手", "文案", "小问题", "改成", "换成", "颜色", "字体", "按钮",
        "一行", "链接", "拼写", "改个", "加个", "调一下", "小改", "简单",
    ),
    # diagnosis of an existing fault
    "diagnosis": (
        "flaky", "intermittent", "sometimes", "root cause", "leak", "race condition",
        "deadlock", "regression", "crash", "hang", "timeout",
        "时好时坏", "偶发", "排查", "定位", "泄漏", "泄露", "死锁", "崩溃", "超时", "卡顿",
    ),
    # building something new rather than changing something
    "construction": (
        "build", "design and build", "implement", "create", "introduce", "set up", "stand up",
        "launch", "replace", "move to", "switch to", "integrate", "support for", "pipeline",
        "搭建", "实现", "开发", "新建", "建设", "引入", "接入", "替换", "换成", "上线", "设计并",
        "支持", "做一个", "做一套",
    ),
    # asks for a change to be made (used by routing: such a plan needs someone who builds it;
    # not a complexity feature)
    "change": (
        "add", "adding", "make it", "change", "modify", "extend", "enable", "refactor",
        "加上", "加一个", "增加", "新增", "添加", "修改", "改造", "重构", "扩展", "支持一下",
    ),
    # a concrete failure report: stack trace, exception, error text
    "error_report": (
        "exception", "traceback", "stack trace", "panic", "error:", "nullpointerexception",
        "segfault", "undefined is not", "cannot read property", "is not a function",
        "报错", "异常", "堆栈",
    ),
    # speed or capacity goals: profiling and tuning across a path, not a one-line change
    "performance": (
        "slow", "slower", "latency", "p95", "p99", "throughput", "qps", "tps", "lighthouse",
        "lcp", "stutter", "stutters", "jank", "takes forever", "optimize", "optimise",
        "性能", "延迟", "吞吐", "优化", "掉帧", "目标是", "以内",
    ),
    # moving a whole system from one technology or place to another
    "migration": (
        "migrate", "migrating", "migration", "move from", "move all", "move our", "move the",
        "porting", "迁移", "迁到", "迁至", "迁往", "要从", "搬到", "切到",
    ),
    # asks to repair one thing
    "fix": (
        "fix", "fixes", "fixing", "修复", "修一下", "修好", "帮忙改", "帮忙看",
    ),
    # several distinct asks in one request
    "conjunction": (
        "as well as", "in addition", "also need", "plus", "on top of that", "and also",
        "另外", "同时", "以及", "并且", "还要", "还需要", "顺便", "此外",
    ),
}
