"""What every command line of larq-glt shares: its ``--help`` layout.

Imports nothing heavy: a command shows ``--help`` or a usage error without
loading TensorFlow.
"""
from __future__ import annotations

import argparse

__all__ = ["HelpFormatter"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after a flag's help only where X means something: not
    for switches (``--quiet``, ``--no-augment``, ``-Os``), required options,
    unset (``None``) or empty defaults, nor a help text that states its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("(default" in text or "%(default)" in text or action.required or action.nargs == 0
                or action.default in (None, [], argparse.SUPPRESS)):
            return text
        return super()._get_help_string(action)
