"""Observability and limits: KPIs, memory guard, Prometheus metrics, alert rules.

Import the submodule you need; this package imports nothing on purpose, so that
``from perfect21.monitor import kpi`` stays cheap on every hot path.

* :mod:`perfect21.monitor.kpi` — the in-process KPI registry (stdlib only).
* :mod:`perfect21.monitor.memory` — :class:`MemoryGuard`, ``parse_memory_limit``.
* :mod:`perfect21.monitor.metrics` — Prometheus text exposition (prometheus_client).
* :mod:`perfect21.monitor.alerts` — YAML rules, pure evaluation, action handlers.
* :mod:`perfect21.monitor.runtime` — :class:`Monitor`, all of the above wired together.
"""
