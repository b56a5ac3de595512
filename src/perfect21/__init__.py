"""Perfect21: a fast, explainable workflow engine for multi-agent AI software development.

The package root stays import-light on purpose: ``perfect21 --version`` must start in
well under 60 ms, so nothing heavy is imported here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
