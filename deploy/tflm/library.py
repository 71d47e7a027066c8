"""The user's TensorFlow Lite Micro tree: finding it, its prebuilt
``libtensorflow-microlite.a`` for a board, the flags TFLM compiled it with, and
how TFLM documents building it."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from deploy.boards import Board, load_board
from deploy.tflm.errors import TflmError

__all__ = ["TflmLibrary", "target_arch", "library_instructions", "find_library", "resolver_methods",
           "BUILD_TYPES", "LIBRARY"]

# TFLM's library directory names: gen/cortex_m_generic_<TARGET_ARCH>_<BUILD_TYPE>[_<kernels>]_gcc/lib
BUILD_TYPES = ("release_with_logs", "release", "default")
LIBRARY = "libtensorflow-microlite.a"
# What the user's tree must contain (relative paths), and what each tells.
_TREE_MARKER = "tensorflow/lite/micro/micro_interpreter.h"
_DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
_RESOLVER_HEADER = "tensorflow/lite/micro/micro_mutable_op_resolver.h"


@dataclasses.dataclass(frozen=True)
class TflmLibrary:
    tree: Path            # the TFLM checkout
    library: Path         # its libtensorflow-microlite.a for the board
    target_arch: str      # TFLM's TARGET_ARCH, e.g. cortex-m7+fp
    build_type: str       # TFLM's BUILD_TYPE
    kernels: str          # OPTIMIZED_KERNEL_DIR ("" for the reference kernels)

    @property
    def include_dirs(self) -> list[Path]:
        d = self.tree / _DOWNLOADS
        return [self.tree, d / "flatbuffers" / "include", d / "gemmlowp", d / "ruy"]

    @property
    def defines(self) -> list[str]:
        """The preprocessor flags TFLM compiled its library with (layouts must agree)."""
        flags = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-DTF_LITE_MCU_DEBUG_LOG"]
        if self.build_type in ("release", "release_with_logs"):
            flags.append("-DNDEBUG")
        if self.build_type == "release":
            flags.append("-DTF_LITE_STRIP_ERROR_STRINGS")
        if self.kernels:
            flags.append(f"-D{self.kernels.upper()}")
        return flags


def target_arch(board: Board) -> str:
    """TFLM's TARGET_ARCH matching the board's compiler flags (hard float: ``+fp``)."""
    hard = "-mfloat-abi=hard" in board.cflags
    return f"{board.cpu}+fp" if hard else board.cpu


#: Debian packages TFLM needs beyond gcc-arm-none-eabi: C++ headers (TFLM's own
#: build stops at ``cstdarg: No such file``) and newlib's C++ library (linking
#: the firmware fails with ``cannot find -lstdc++_nano``).
DEBIAN_PACKAGES = ("libstdc++-arm-none-eabi-dev", "libstdc++-arm-none-eabi-newlib")
_MISSING_PACKAGE = (
    (re.compile(r"fatal error: c\w+: No such file"), "libstdc++-arm-none-eabi-dev"),
    (re.compile(r"cannot find -lstdc\+\+(_nano)?"), "libstdc++-arm-none-eabi-newlib"),
)


def missing_package(output: str) -> str | None:
    """The Debian package whose absence a failed build's output shows, if any."""
    for pattern, package in _MISSING_PACKAGE:
        if pattern.search(output):
            return package
    return None


def library_instructions(tflm_dir, board: Board) -> str:
    """How TFLM documents building its library, for this board."""
    return (f"install the Debian packages {' and '.join(DEBIAN_PACKAGES)} (TFLM is C++), then "
            f"build it with TFLM's makefile (tensorflow/lite/micro/cortex_m_generic/README.md):\n"
            f"  cd {tflm_dir}\n"
            f"  make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic "
            f"TARGET_ARCH={target_arch(board)} TARGET_TOOLCHAIN_ROOT=$(dirname $(which arm-none-eabi-gcc))/ "
            f"BUILD_TYPE=release_with_logs microlite\n"
            f"(it downloads flatbuffers, gemmlowp, ruy, kissfft and CMSIS into {_DOWNLOADS} on the first run; "
            f"OPTIMIZED_KERNEL_DIR=cmsis_nn is optional, larq-glt's ops do not use it)")


def find_library(tflm_dir, board: "str | Board", build_type: str | None = None) -> TflmLibrary:
    """The user's TFLM tree and its built library for ``board`` (of ``build_type``
    if given, else preferring release_with_logs, release, default); TflmError
    saying what is missing and how to build it otherwise."""
    board = load_board(board)
    if tflm_dir is None:
        raise TflmError("--runtime tflm needs --tflm-dir: a TensorFlow Lite Micro checkout "
                        "(git clone https://github.com/tensorflow/tflite-micro) with its library built; "
                        + library_instructions("<tflite-micro>", board))
    tree = Path(tflm_dir).expanduser().resolve()
    if not tree.is_dir():
        raise TflmError(f"--tflm-dir {tflm_dir}: no such directory")
    if not (tree / _TREE_MARKER).is_file():
        raise TflmError(f"--tflm-dir {tree} is not a TensorFlow Lite Micro tree ({_TREE_MARKER} is missing); "
                        "point it at a checkout of github.com/tensorflow/tflite-micro")
    arch = target_arch(board)
    gen = tree / "gen"
    found = sorted(gen.glob(f"cortex_m_generic_*/lib/{LIBRARY}")) if gen.is_dir() else []
    matching = []
    for lib in found:
        m = re.fullmatch(r"cortex_m_generic_(.+?)_(release_with_logs|release|default)(?:_(\w+?))?_gcc",
                         lib.parent.parent.name)
        if m and m[1] == arch and build_type in (None, m[2]):
            matching.append(TflmLibrary(tree, lib, arch, m[2], m[3] or ""))
    if not matching:
        others = ", ".join(str(p.relative_to(tree)) for p in found)
        raise TflmError(f"{tree} has no {LIBRARY} for TARGET_ARCH={arch}"
                        + (f" BUILD_TYPE={build_type}" if build_type else "") + f" ({board.name} compiles with "
                        f"{' '.join(board.cflags)})" + (f"; found only {others}" if others else "")
                        + "; " + library_instructions(tree, board))
    missing = [d for d in matching[0].include_dirs if not d.is_dir()]
    if missing:
        raise TflmError(f"{tree}: TFLM's third-party downloads are missing ({', '.join(map(str, missing))}); "
                        + library_instructions(tree, board))
    # release_with_logs first: error messages on the UART and per-op profiling work.
    matching.sort(key=lambda lib: (BUILD_TYPES.index(lib.build_type), lib.kernels != "", str(lib.library)))
    return matching[0]



def resolver_methods(tree: Path | None) -> set[str] | None:
    """The ``MicroMutableOpResolver::Add…`` methods of the TFLM tree (None without one)."""
    if tree is None or not (tree / _RESOLVER_HEADER).is_file():
        return None
    return set(re.findall(r"TfLiteStatus (Add\w+)\(", (tree / _RESOLVER_HEADER).read_text()))
