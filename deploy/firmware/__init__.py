"""Stage 3 of deploy/: a firmware for a board. The generated model sources, the
harness (startup, UART console, frame protocol, counters, LED) and sample
frames, compiled with arm-none-eabi-gcc; the same model sources built on the
host for bit-exact tests.

    image.py      build(board, model, out): the library behind deploy/build.py
    harness.py    the board harness rendered from firmware_templates/harness/, compiled, sized
    samples.py    sample photos built into a firmware
    host.py       the generated model compiled and run on the host (gcc)
    hostlib.py    the runtime's kernels as a host shared library (ctypes), one call at a time
"""
