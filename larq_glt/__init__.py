"""larq-glt: fully-binarized networks with a Generic Learned Thermometer input,
from training to Cortex-M firmware.

Importing the package selects legacy Keras (``tf_keras``) for TensorFlow, which
Larq and the Larq Compute Engine converter need; it must happen before
TensorFlow is first imported, so it is done here rather than in the user's shell.
"""
import os
import sys

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "larq_glt must be imported before tensorflow (it selects legacy Keras with "
        "TF_USE_LEGACY_KERAS=1, which larq and the LCE converter need); "
        "or set TF_USE_LEGACY_KERAS=1 in the environment."
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"
_TF_LOG_LEVEL_GIVEN = "TF_CPP_MIN_LOG_LEVEL" in os.environ  # the command lines then keep it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
