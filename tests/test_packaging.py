"""The project as a user installs it: a wheel (not the editable checkout) that carries the tiny model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # built from a clean copy of what the wheel is made of: a build in the checkout leaves lib/editlab.egg-info,
    # whose file list a later build would reuse, hiding a missing package-data rule
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "lib", source / "lib", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(source)], check=True, cwd=out)
    (found,) = out.glob("editlab-*.whl")
    return found


def test_the_wheel_carries_the_weights_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT / "lib").as_posix() for p in (ROOT / "lib/editlab/toy/weights").rglob("*") if p.is_file()}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "editlab/py.typed" in names


def test_the_installed_wheel_loads_the_tiny_model_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import editlab, pathlib; p = editlab.load_pipeline('toy'); "
            "print(pathlib.Path(editlab.__file__).parent, type(p.unet).__name__, p.unet.config.sample_size)")
    # only the wheel's copy of editlab is importable: the checkout's lib/ is not on the path, nor is the cwd
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
                          cwd=elsewhere, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    folder, unet, size = done.stdout.split()[-3:]
    assert Path(folder).resolve().is_relative_to(site.resolve()), folder
    assert (unet, size) == ("UNet2DConditionModel", "16")
