"""Architecture decision records: a SQLite store with group commit and bilingual search.

::

    from perfect21.decisions import Decision, DecisionStore

    async with DecisionStore.open(".perfect21/decisions.db") as store:
        d = await store.record(Decision(title="Use PostgreSQL", decision="PostgreSQL"))
        await store.search("jwt 会话")

:class:`SyncDecisionStore` is the same store for scripts and the CLI. See ``docs/decisions.md``.
"""

from perfect21.decisions.models import Decision, Links, Option, Status
from perfect21.decisions.store import DecisionStore, ImportResult, SyncDecisionStore, default_path

__all__ = [
    "Decision",
    "DecisionStore",
    "ImportResult",
    "Links",
    "Option",
    "Status",
    "SyncDecisionStore",
    "default_path",
]
