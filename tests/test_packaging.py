"""The installed package is the source tree: setup.cfg lists every subpackage (a wheel leaves out an
unlisted one, which only tests run from another folder would notice)."""

from __future__ import annotations

import configparser

from conftest import ROOT


def test_setup_cfg_lists_every_subpackage():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    listed = {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "rtcheck").rglob("__init__.py")}
    assert on_disk - listed == set(), "add these to [options] packages in setup.cfg"
    assert listed - on_disk == {"rtcheck.builtin_protocols"}  # the shipped protocols/, by package_dir
