"""Which Pillow + torchvision the loader's pixels equal, and a warning when the
installed ones are other versions.

The claim itself lives in the Rust core (`_core.PIXEL_REFERENCE`, from
rust/src/imaging/mod.rs); this module only reads it. Installed versions are read
from the distributions' metadata, so nothing here imports Pillow or torchvision
(and an absent one is simply not compared: the loader does not need it).
"""

from __future__ import annotations

import contextlib
import warnings
from importlib import metadata

from mobileclip_fastload._core import PIXEL_REFERENCE

_DISPLAY_NAMES = {"pillow": "Pillow", "torchvision": "torchvision"}


class PixelReferenceWarning(UserWarning):
    """An installed Pillow or torchvision is not the version the loader's pixels equal."""


def describe(versions: dict[str, str] = PIXEL_REFERENCE) -> str:
    """E.g. "Pillow 13.0.0 + torchvision 0.29.2"."""
    return " + ".join(f"{_DISPLAY_NAMES.get(name, name)} {version}" for name, version in versions.items())


def install_command() -> str:
    """The pip command that installs the reference versions (constraints/bit-exact.txt in the source)."""
    return "pip install " + " ".join(f"'{name}=={version}'" for name, version in PIXEL_REFERENCE.items())


def installed_versions() -> dict[str, str]:
    """The installed version of each reference distribution that is installed."""
    found = {}
    for name in PIXEL_REFERENCE:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def differing_versions() -> dict[str, str]:
    """Installed reference distributions whose version is not the reference's: {name: installed}."""
    return {name: v for name, v in installed_versions().items() if v != PIXEL_REFERENCE[name]}


def warn_if_installed_differs() -> None:
    """One warning naming the installed and the reference versions, when they differ."""
    differing = differing_versions()
    if differing:
        warnings.warn(
            f"mobileclip_fastload's pixels equal {describe()}; installed: {describe(differing)}. "
            "The loader is unchanged, but a replay with the installed version may differ from it "
            f"(the reference: {install_command()}).",
            PixelReferenceWarning,
            stacklevel=2,
        )
