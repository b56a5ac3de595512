"""A small local agent for the API tests: reads its brief, works a moment, reports.

Usage (from a runner profile): ``python agent.py {agent} {prompt_file}``. A brief that
contains ``SLOW`` makes it sleep 30 s (to test cancellation); otherwise it takes ~0.2 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> int:
    agent, prompt_file = sys.argv[1], Path(sys.argv[2])
    brief = prompt_file.read_text(encoding="utf-8")
    time.sleep(30.0 if "SLOW" in brief else 0.2)
    print(f"{agent} done: {len(brief)} chars of brief")
    return 0


if __name__ == "__main__":
    sys.exit(main())
