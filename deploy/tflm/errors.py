"""The error every part of the TFLM target raises."""
from __future__ import annotations

from deploy.firmware import image as firmware


class TflmError(firmware.FirmwareError):
    """A TFLM build that cannot be done (message says why and what to do); a
    FirmwareError, so deploy/build.py reports it as one."""
