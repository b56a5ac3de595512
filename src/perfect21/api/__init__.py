"""HTTP API and live dashboard (FastAPI + uvicorn): ``create_app(config)``.

Importing this package imports FastAPI (~350 ms): nothing on the ``perfect21 plan`` path
imports it; ``perfect21 serve`` does.
"""

from __future__ import annotations

from perfect21.api.app import create_app, status_for
from perfect21.api.profiles import RunnerProfile, load_profiles

__all__ = ["RunnerProfile", "create_app", "load_profiles", "status_for"]
