"""The environment `make setup` builds is the one setup.cfg describes: pip finds no broken
requirement, and every pinned package that is installed has the pinned version."""
from __future__ import annotations

import configparser
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"


def _pins() -> dict:
    """package name -> pinned version, over install_requires and every extra."""
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    lines = cfg["options"]["install_requires"].splitlines()
    for _, value in cfg["options.extras_require"].items():
        lines += value.splitlines()
    pins = {}
    for line in filter(None, (x.strip() for x in lines)):
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^;\s]+)", line)
        assert match, f"setup.cfg: {line!r} is not pinned as name==version"
        pins[match[1]] = match[3]
    return pins


def test_pip_check_is_clean():
    out = subprocess.run([sys.executable, "-m", "pip", "check", "--disable-pip-version-check"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_installed_versions_are_the_pinned_ones():
    pins = _pins()
    assert {"numpy", "onnxruntime", "protobuf"} <= set(pins)
    wrong = {}
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra that this environment does not have
        if installed.split("+")[0] != version:  # ==X admits a local build X+cpu (PEP 440)
            wrong[name] = (version, installed)
    assert not wrong, f"setup.cfg pins vs installed: {wrong}"
