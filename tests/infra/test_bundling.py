"""The code asset's recipe: pip for Linux arm64 wheels, what ships, bytecode or a warning.

These tests need neither PyPI nor the wheelhouse; ``test_asset.py`` builds the
asset for real.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Annotations, Match

from oms_webhooks_infra import asset, bundling, runtime_python, wheels
from oms_webhooks_infra import constants as c
from tests.infra.conftest import Synthesized


def test_requirements_come_from_pyproject_without_boto3() -> None:
    requirements = wheels.runtime_requirements()
    names = {r.split(">")[0].split("<")[0].split("[")[0].split("=")[0] for r in requirements}
    assert "boto3" not in names
    assert {"pydantic", "pynamodb", "requests", "aws-lambda-powertools"} <= names


def test_pip_command_targets_lambda_arm64_wheels_only() -> None:
    command = wheels.pip_command("/out", ["pydantic>=2"])
    joined = " ".join(command)
    assert f"--platform {c.PIP_PLATFORM}" in joined
    assert c.PIP_PLATFORM == "manylinux2014_aarch64"
    assert "--only-binary=:all:" in command
    assert "--no-compile" in command  # the bytecode comes from the runtime's version, later
    assert f"--python-version {c.PYTHON_VERSION}" in joined
    assert "--target /out" in joined
    assert command[-1] == "pydantic>=2"


def test_functions_run_the_version_that_compiles_their_bytecode(synthesized: Synthesized) -> None:
    runtimes = {
        f["Properties"]["Runtime"] for f in synthesized.resources("AWS::Lambda::Function").values()
    }
    assert runtimes == {f"python{c.PYTHON_VERSION}"}
    assert runtime_python.pyc_magic(c.PYC_MAGIC_NUMBER) == b"\xf3\r\r\n"  # CPython 3.13's


def test_shipped_modules_import_only_shipped_modules() -> None:
    # GIVEN the package files that go into the asset
    shipped = {asset.module_name(p) for p in asset.shipped_package_files() if p.suffix == ".py"}
    assert "oms_webhooks.handlers.dispatcher" in shipped
    assert not any(m.startswith(("oms_webhooks.local", "oms_webhooks.cli")) for m in shipped)
    # WHEN every import of the package's own modules is read, lazy ones included
    # THEN none reaches a module left out of the asset
    assert asset.unshipped_imports() == set()


def test_an_import_of_a_developer_tool_is_found(tmp_path: Path) -> None:
    package = tmp_path / "oms_webhooks"
    (package / "local").mkdir(parents=True)
    for name in ("__init__.py", "cli.py", "local/__init__.py", "local/stack.py", "fanout.py"):
        (package / name).write_text("")
    (package / "sender.py").write_text("def f():\n    from .local.stack import run\n")
    assert asset.unshipped_imports(package) == {
        ("oms_webhooks.sender", "oms_webhooks.local.stack"),
        ("oms_webhooks.sender", "oms_webhooks.local.stack.run"),
    }


def test_package_imports_resolve_relative_and_lazy_imports(tmp_path: Path) -> None:
    package = tmp_path / "oms_webhooks"
    (package / "handlers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "handlers" / "__init__.py").write_text("")
    (package / "handlers" / "x.py").write_text(
        "from .. import settings\n"
        "def f():\n    from oms_webhooks.cli import main\n    import oms_webhooks.local.stack\n"
    )
    found = asset.package_imports([Path("handlers/x.py")], package)
    assert found["oms_webhooks.handlers.x"] == {
        "oms_webhooks",
        "oms_webhooks.settings",
        "oms_webhooks.cli",
        "oms_webhooks.cli.main",
        "oms_webhooks.local.stack",
    }


def test_developer_tools_are_not_shipped_and_new_modules_are(tmp_path: Path) -> None:
    # GIVEN a package with a developer tool and a module no list names yet
    package = tmp_path / "src" / "oms_webhooks"
    (package / "local").mkdir(parents=True)
    (package / "__pycache__").mkdir()
    for name in ("__init__.py", "cli.py", "receiver.py", "publisher.py", "event_bus.py"):
        (package / name).write_text("")
    (package / "local" / "stack.py").write_text("")
    (package / "__pycache__" / "cli.cpython-313.pyc").write_bytes(b"")
    # WHEN it is copied into the asset
    out = tmp_path / "out"
    asset.copy_package(out, package)
    # THEN the tools and caches stay behind, the new module ships
    expected = ["__init__.py", "event_bus.py"]
    assert sorted(p.name for p in (out / "oms_webhooks").iterdir()) == expected
    assert [str(p) for p in asset.shipped_package_files(package)] == expected


def test_asset_hash_changes_with_requirements_and_bytecode() -> None:
    python = runtime_python.RuntimePython("/x/python3.13", "3.13", "cpython-313", b"\xf3\r\r\n")
    assert asset.fingerprint(["a"], None) != asset.fingerprint(["b"], None)
    assert asset.fingerprint(["a"], None) == asset.fingerprint(["a"], None)
    assert asset.fingerprint(["a"], None) != asset.fingerprint(["a"], python)


def _warnings(python: runtime_python.RuntimePython | None) -> Annotations:
    stack = Stack(App(), "AssetStack")
    bundling.bundled_code(stack, python)
    return Annotations.from_stack(stack)


def test_synth_warns_when_the_asset_ships_source_only() -> None:
    message = Match.string_like_regexp(f"No Python {c.PYTHON_VERSION} found.*ships source only")
    _warnings(None).has_warning("*", message)
    python = runtime_python.RuntimePython("/x/python3.13", "3.13", "cpython-313", b"\xf3\r\r\n")
    _warnings(python).has_no_warning("*", Match.any_value())


def _runtime_python_or_skip() -> runtime_python.RuntimePython:
    found = runtime_python.find_runtime_python()
    if found is None:
        pytest.skip(f"no Python {c.PYTHON_VERSION} on this machine")
    return found


def test_finds_the_runtime_version_on_path_by_running_it(tmp_path: Path) -> None:
    # GIVEN a PATH whose python3.13 is the machine's Python 3.13, and no pyenv
    real = _runtime_python_or_skip()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / f"python{c.PYTHON_VERSION}").symlink_to(real.executable)
    environ = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)}
    # WHEN it is looked for THEN that one is found, with 3.13's magic number
    found = runtime_python.find_runtime_python(environ=environ)
    assert found is not None
    assert found.executable == str(tmp_path / "bin" / f"python{c.PYTHON_VERSION}")
    assert (found.version, found.cache_tag) == (c.PYTHON_VERSION, "cpython-313")
    assert found.magic == runtime_python.pyc_magic(c.PYC_MAGIC_NUMBER)


def test_a_python_of_another_version_or_a_failing_shim_is_not_taken(tmp_path: Path) -> None:
    # GIVEN a "python3.13" that is a shim failing like pyenv's for an unselected version
    shim = tmp_path / "bin" / f"python{c.PYTHON_VERSION}"
    shim.parent.mkdir()
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.13: command not found' >&2\nexit 127\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    environ = {"PATH": str(shim.parent), "HOME": str(tmp_path)}
    # WHEN it is looked for THEN neither the shim nor the running interpreter is taken
    found = runtime_python.find_runtime_python(environ=environ)
    if found is not None:  # only a real 3.13 elsewhere (/usr/bin, or this interpreter) counts
        assert found.version == c.PYTHON_VERSION and found.executable != str(shim)
    assert runtime_python.probe_python(str(shim)) is None


def test_pyenv_versions_are_searched(tmp_path: Path) -> None:
    real = _runtime_python_or_skip()
    version_bin = tmp_path / "pyenv" / "versions" / f"{c.PYTHON_VERSION}.0" / "bin"
    version_bin.mkdir(parents=True)
    (version_bin / f"python{c.PYTHON_VERSION}").symlink_to(real.executable)
    environ = {"PATH": os.devnull, "PYENV_ROOT": str(tmp_path / "pyenv")}
    found = runtime_python.find_runtime_python(environ=environ)
    assert found is not None
    assert found.version == c.PYTHON_VERSION
