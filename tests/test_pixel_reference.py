"""The claim "the loader's pixels equal Pillow X + torchvision Y" is made once, by the
Rust core (`_core.PIXEL_REFERENCE`): the bit-exactness tests run on exactly those
versions, the pins that install them (the `test` extra, constraints/bit-exact.txt)
agree with it, the runtime dependencies are ranges, and the package warns at import,
without importing Pillow, when an installed version differs."""

from __future__ import annotations

import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path

import mobileclip_fastload
import pytest
import tomllib
from mobileclip_fastload import _core, pixel_reference
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for line in requirements:
        req = Requirement(line)
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[req.name.lower()] = exact[0]
    return pins


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_reference_names_pillow_and_torchvision():
    assert set(_core.PIXEL_REFERENCE) == {"pillow", "torchvision"}
    assert mobileclip_fastload.PIXEL_REFERENCE is _core.PIXEL_REFERENCE
    assert f"Pillow {_core.PIXEL_REFERENCE['pillow']}" in mobileclip_fastload.__doc__


def test_the_bit_exactness_tests_run_on_the_reference_versions():
    # test_imaging_*, test_demo, ... compare against the installed Pillow + torchvision
    for name, version in _core.PIXEL_REFERENCE.items():
        assert metadata.version(name) == version, (
            f"installed {name} is not the reference {version}: pip install -c constraints/bit-exact.txt"
        )


def test_constraint_file_pins_exactly_the_reference():
    lines = [line.strip() for line in (REPO / "constraints" / "bit-exact.txt").read_text().splitlines()]
    assert _pins([line for line in lines if line and not line.startswith("#")]) == _core.PIXEL_REFERENCE


def test_test_extra_pins_the_reference_and_runtime_pins_nothing():
    project = _pyproject()["project"]
    test_pins = _pins(project["optional-dependencies"]["test"])
    assert {name: test_pins.get(name) for name in _core.PIXEL_REFERENCE} == _core.PIXEL_REFERENCE
    assert _pins(project["dependencies"]) == {}, "runtime dependencies are ranges"


def test_warns_once_naming_both_versions_when_installed_pillow_differs(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(pixel_reference.metadata, "version", lambda name: "12.3.0" if name == "pillow" else real(name))
    with pytest.warns(pixel_reference.PixelReferenceWarning) as record:
        pixel_reference.warn_if_installed_differs()
    assert len(record) == 1
    message = str(record[0].message)
    assert "Pillow 12.3.0" in message and f"Pillow {_core.PIXEL_REFERENCE['pillow']}" in message
    assert "pip install 'pillow==" + _core.PIXEL_REFERENCE["pillow"] in message


def test_silent_when_pillow_is_absent_or_the_reference(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixel_reference.warn_if_installed_differs()  # the reference versions are installed here

        def absent(name):
            raise metadata.PackageNotFoundError(name)

        monkeypatch.setattr(pixel_reference.metadata, "version", absent)
        pixel_reference.warn_if_installed_differs()
        assert pixel_reference.installed_versions() == {}


@pytest.mark.slow
def test_import_does_not_import_pillow_or_torchvision():
    code = "import sys, mobileclip_fastload; print(sorted(m for m in ('PIL', 'torchvision') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
