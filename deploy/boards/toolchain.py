"""Finding the cross toolchain and the emulators; a clear error naming the
Debian package when one is missing, and an optional apt-get install for CI."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# tool -> Debian package that provides it
PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "arm-none-eabi-nm": "binutils-arm-none-eabi",
    "arm-none-eabi-objcopy": "binutils-arm-none-eabi",
    "arm-none-eabi-readelf": "binutils-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "make": "make",
}
NEWLIB_PACKAGE = "libnewlib-arm-none-eabi"
# what a firmware build needs, and what running it in QEMU adds
BUILD_PACKAGES = ("gcc-arm-none-eabi", "binutils-arm-none-eabi", NEWLIB_PACKAGE, "make")
QEMU_PACKAGES = ("qemu-system-arm",)


class ToolchainError(RuntimeError):
    """A needed tool is missing; the message names the package to install."""


def find_tool(name: str) -> str:
    """Absolute path of `name` on PATH, or ToolchainError naming its Debian package."""
    path = shutil.which(name)
    if path:
        return path
    pkg = PACKAGES.get(name)
    hint = f": install the Debian package {pkg} (apt-get install {pkg})" if pkg else ""
    raise ToolchainError(f"{name} not found on PATH{hint}")


def arm_gcc() -> str:
    gcc = find_tool("arm-none-eabi-gcc")
    _check_newlib(gcc)
    return gcc


def qemu_system_arm() -> str:
    return find_tool("qemu-system-arm")


def renode() -> str | None:
    """Path of the `renode` launcher, or None (Renode is not a Debian package)."""
    return shutil.which("renode")


def renode_test() -> str | None:
    return shutil.which("renode-test")


def have(name: str) -> bool:
    return shutil.which(name) is not None


def _check_newlib(gcc: str) -> None:
    # gcc-arm-none-eabi installs without a C library; nano.specs comes with newlib.
    out = subprocess.run([gcc, "-print-file-name=nano.specs"], capture_output=True,
                         text=True, check=False).stdout.strip()
    if not out or not Path(out).is_file():
        raise ToolchainError(
            f"newlib for arm-none-eabi not found (no nano.specs): install the Debian package "
            f"{NEWLIB_PACKAGE} (apt-get install {NEWLIB_PACKAGE})")


def missing_packages(packages=BUILD_PACKAGES + QEMU_PACKAGES) -> list[str]:
    """Debian packages among `packages` whose tools are not usable here."""
    missing = []
    for pkg in packages:
        if pkg == NEWLIB_PACKAGE:
            gcc = shutil.which("arm-none-eabi-gcc")
            try:
                if gcc is None:
                    raise ToolchainError("no gcc")
                _check_newlib(gcc)
            except ToolchainError:
                missing.append(pkg)
            continue
        tools = [t for t, p in PACKAGES.items() if p == pkg]
        if not all(shutil.which(t) for t in tools):
            missing.append(pkg)
    return missing


def ensure_installed(packages=BUILD_PACKAGES + QEMU_PACKAGES, *, run_apt: bool | None = None) -> None:
    """Install the missing Debian packages with apt-get when running as root.

    run_apt=None: install only if root and not interactive (CI); False: only check.
    Raises ToolchainError listing what is still missing.
    """
    missing = missing_packages(packages)
    if not missing:
        return
    if run_apt is None:
        run_apt = os.geteuid() == 0 and not sys.stdin.isatty()
    if run_apt:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                       check=False, env=env)
        missing = missing_packages(packages)
        if not missing:
            return
    raise ToolchainError("missing Debian packages: " + " ".join(missing)
                         + f" (apt-get install {' '.join(missing)})")
