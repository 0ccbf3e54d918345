"""The package as Colab installs it: a normal (non-editable) wheel, in an environment without the project.

Colab runs ``pip install "resnext-lessons[data] @ git+<repository>"``, which builds a wheel from
pyproject.toml. These tests build that wheel (offline, with this environment's setuptools), check
what it holds, install it into a fresh virtual environment that sees this environment's packages
(torch included, so nothing is downloaded) but not the editable project, and import it there.
"""

from __future__ import annotations

import json
import re
import site
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "resnext_lessons"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIREMENTS = (ROOT / "requirements.txt").read_text()


def _source_modules() -> set[str]:
    """Every module of the package in the source tree, as a path inside the wheel."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*.py")
        if "__pycache__" not in path.parts
    }


def _module_names(modules: set[str]) -> list[str]:
    names = []
    for module in sorted(modules):
        parts = module.removesuffix(".py").split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: build offline with this environment's setuptools (pyproject.toml's
    # build-system needs setuptools>=64; Colab's pip fetches it into an isolated environment).
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, f"`pip wheel . --no-deps` failed:\n{built.stdout}\n{built.stderr}"
    wheels = list(out.glob("resnext_lessons-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, found {[w.name for w in out.iterdir()]}"
    return wheels[0]


def test_wheel_holds_every_module_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = {n for n in names if n.endswith(".py")}
    expected = _source_modules()
    assert f"{PACKAGE}/viz/__init__.py" in expected, "the viz subpackage is missing from the source"
    assert modules == expected, (
        f"missing from the wheel: {sorted(expected - modules)}; "
        f"in the wheel but not in {PACKAGE}/: {sorted(modules - expected)}"
    )
    tops = {n.split("/")[0] for n in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert len(dist_info) == 1 and tops - dist_info == {PACKAGE}, f"top-level entries: {sorted(tops)}"
    leaked = [n for n in names if re.match(r"(tests|book|_build|build|dist)/", n) or "__pycache__" in n]
    assert not leaked, f"the wheel holds files that are not the package: {leaked}"


def _requirement(name: str) -> Requirement:
    for spec in PYPROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        if req.name == name:
            return req
    raise AssertionError(f"pyproject.toml does not list {name}")


def _pinned(name: str) -> Version:
    match = re.search(rf"^{name}==(\S+)", REQUIREMENTS, re.MULTILINE)
    assert match, f"requirements.txt does not pin {name}"
    return Version(match.group(1))


@pytest.mark.parametrize("name", ["torch", "torchvision"])
def test_pyproject_declares_a_supported_range_that_holds_the_pin(name):
    """The package states the oldest torch/torchvision it supports (Colab's is older than the pin),
    without an upper bound that would make pip replace Colab's torch."""
    req = _requirement(name)
    lower = [s for s in req.specifier if s.operator == ">="]
    assert lower, f"pyproject.toml: give {name} a lower bound (>=), the oldest version checked"
    assert not [s for s in req.specifier if s.operator in ("<", "<=", "==", "~=")], (
        f"{req}: an upper bound or pin would make Colab reinstall {name}"
    )
    assert req.specifier.contains(_pinned(name)), f"requirements.txt's {name} pin is outside {req}"


def _site_dirs() -> list[str]:
    dirs = []
    for path in [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]:
        if path not in dirs and Path(path).is_dir():
            dirs.append(path)
    return dirs


IMPORT_CHECK = textwrap.dedent(
    """
    import importlib, importlib.metadata as md, json, sys
    from packaging.requirements import Requirement

    names = json.loads(sys.argv[1])
    modules = {name: importlib.import_module(name).__file__ for name in names}
    dist = md.distribution("resnext-lessons")
    problems = []
    for spec in dist.requires or []:
        req = Requirement(spec)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ["", "data"]):
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            problems.append(f"{req}: not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req}: found {version}")
    print(json.dumps({
        "modules": modules,
        "dist": str(dist.locate_file("")),
        "problems": problems,
        "torch": md.version("torch"),
        "torchvision": md.version("torchvision"),
    }))
    """
)


def test_wheel_imports_in_a_fresh_environment(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         "--no-compile", "-q", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )
    assert installed.returncode == 0, f"installing the wheel failed:\n{installed.stdout}\n{installed.stderr}"
    # Then this environment's packages (torch is gigabytes: not installed again), as plain path
    # entries after the new environment's own: .pth files inside them are not run, so the
    # project's editable finder stays out, and pip above saw no installed resnext-lessons.
    (Path(purelib) / "_outer_env.pth").write_text("\n".join(_site_dirs()) + "\n")

    names = _module_names({n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")})
    checked = subprocess.run(
        [str(python), "-I", "-c", IMPORT_CHECK, json.dumps(names)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert checked.returncode == 0, f"importing the installed wheel failed:\n{checked.stderr[-4000:]}"
    report = json.loads(checked.stdout.strip().splitlines()[-1])
    for name, file in report["modules"].items():
        assert Path(file).resolve().is_relative_to(venv.resolve()), f"{name} was imported from {file}, not the wheel"
    assert Path(report["dist"]).resolve().is_relative_to(venv.resolve()), report["dist"]
    assert not report["problems"], f"unmet dependencies of the wheel: {report['problems']}"
    assert len(report["modules"]) == len(names) >= 2
