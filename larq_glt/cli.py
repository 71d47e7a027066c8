"""What every command line of larq-glt shares: its ``--help`` layout, and
quiet TensorFlow.

Importing this module (every command does, before TensorFlow) silences
TensorFlow's start-up noise: its C++ log (``TF_CPP_MIN_LOG_LEVEL=3``: the
``Unable to register cuFFT/cuDNN/cuBLAS factory`` and ``oneDNN supports
DT_UINT8 only …`` lines; a ``TF_CPP_MIN_LOG_LEVEL`` set in the environment is
kept, e.g. 0 to see everything), and two Python warnings that say nothing
about the user's run (:data:`NOISE`: AutoGraph declining to convert larq's
functions, "please report this to the TensorFlow team", and tf.function
retracing between Keras ``fit`` calls). Every other warning is shown.
Imports nothing heavy: a command shows ``--help`` or a usage error without
loading TensorFlow.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

import larq_glt

__all__ = ["HelpFormatter", "NOISE"]

#: Substrings of TensorFlow log messages that are not shown by the commands.
NOISE = ("AutoGraph could not transform", "Please report this to the TensorFlow team",
         "triggered tf.function retracing")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in NOISE)


if not larq_glt._TF_LOG_LEVEL_GIVEN and "tensorflow" not in sys.modules:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
if not any(isinstance(f, _DropNoise) for f in logging.getLogger("tensorflow").filters):
    logging.getLogger("tensorflow").addFilter(_DropNoise())


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
