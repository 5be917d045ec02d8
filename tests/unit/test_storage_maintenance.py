"""`storage.maintenance.clean_home`: what dead writers left in a data home goes, nothing else;
`DataHome.ensure` runs it on every open."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from storage.home import DataHome
from storage.maintenance import clean_home
from storage.parquet_parts import _host
from storage.registry import Registry


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clean_home_removes_dead_writers_temp_parts_and_registrations(tmp_path):
    home = DataHome(tmp_path / "home")
    home.ensure()
    dead = _dead_pid()
    day = home.labels / "date=2026-01-01"
    day.mkdir(parents=True)
    dead_part = day / f".deadbeef.pid{dead}.{_host()}.parquet.tmp"
    live_part = home.queue / f".cafebabe.pid{os.getpid()}.{_host()}.parquet.tmp"
    dead_model = home.models / f".tmp-{dead}-{uuid.uuid4().hex}"
    live_model = home.models / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
    for p in (dead_part, live_part):
        p.write_bytes(b"half a parquet file")
    for p in (dead_model, live_model):
        p.mkdir()
        (p / "weights.pt").write_bytes(b"half")
    assert clean_home(home) == 2
    assert not dead_part.exists() and not dead_model.exists()
    assert live_part.exists() and live_model.exists()
    assert clean_home(home) == 0
    assert Registry(home).versions() == []


def test_ensure_cleans_on_every_open(tmp_path):
    home = DataHome(tmp_path / "home").ensure()
    leftover = home.models / f".tmp-{_dead_pid()}-{uuid.uuid4().hex}"
    leftover.mkdir()
    home.ensure()
    assert not leftover.exists()
    assert clean_home(DataHome(tmp_path / "never-made")) == 0
