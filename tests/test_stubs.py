"""`_core.pyi` cannot drift from the compiled module: mypy's stubtest compares
every name, signature, default and class of `mobileclip_fastload._core` with
the stub and this test fails on any difference (no allowlist)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import mobileclip_fastload._core as core
import pytest


@pytest.mark.slow
def test_core_stub_matches_the_compiled_module(tmp_path):
    # The package this suite imports (PYTHONPATH=python or the installed one), so the
    # stub beside it is checked against the very extension the other tests run.
    package_root = Path(core.__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(package_root), os.environ.get("PYTHONPATH", "")]))
    # Python sources the stub imports (the package's own, torch through it) are not
    # type-checked: stubtest compares the stub with the runtime module, and reading
    # torch would take most of a minute. Stubs (numpy's, typeshed) are still read.
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nfollow_imports = skip\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "mobileclip_fastload._core", "--mypy-config-file", str(config)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "Success: no issues found" in done.stdout


def test_core_stub_exception_bases_match():
    """stubtest does not compare base classes: the exception hierarchy (which
    built-in kinds each error also is) is checked here."""
    stub = ast.parse((Path(core.__file__).parent / "_core.pyi").read_text())
    checked = 0
    for node in stub.body:
        runtime = getattr(core, node.name, None) if isinstance(node, ast.ClassDef) else None
        if isinstance(runtime, type) and issubclass(runtime, BaseException):
            stub_bases = tuple(ast.unparse(b) for b in node.bases)
            assert stub_bases == tuple(b.__name__ for b in runtime.__bases__), node.name
            checked += 1
    assert checked == sum(isinstance(v, type) and issubclass(v, BaseException) for v in vars(core).values())
