"""The logs on object storage, the parts that need no server: `[storage] logs_url` checks,
the home's layout, the readers' local copies, compaction's refusal. The S3 round trips are
in tests/integration/test_object_storage.py (a real S3 server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import ConfigError, load_config
from storage.compaction import compact_log
from storage.home import OBJECTS_CACHE, DataHome, StorageError
from storage.objects import ObjectFolder, check_logs_url, local_copies


def _cfg(tmp_path, text: str):
    p = tmp_path / "loopwright.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[storage]\nlogs_url = "/mnt/logs"\n', "storage.logs_url = '/mnt/logs' is not an object"),
        ('[storage]\nlogs_url = "s3://ab/x"\n', "the bucket name 'ab' is not valid"),
        ('[storage]\nlogs_url = "s3://a_b/x"\n', "the bucket name 'a_b' is not valid"),
        ('[storage]\nlogs_url = "s3://Logs/x"\n', "the bucket name 'Logs' is not valid"),
        (
            '[storage]\nlogs_url = "s3://logs/x"\nendpoint_url = "127.0.0.1:9000"\n',
            "storage.endpoint_url = '127.0.0.1:9000': use a URL such as",
        ),
        ('[storage]\nendpoint_url = "http://127.0.0.1:9000"\n', "storage.logs_url is ''"),
    ],
)
def test_bad_object_storage_settings_name_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError) as exc:
        load_config(_cfg(tmp_path, text), env={})
    assert needle in str(exc.value)


def test_good_settings_load_and_the_environment_overrides_them(tmp_path):
    path = _cfg(tmp_path, '[storage]\nlogs_url = "s3://team-logs/prod"\n')
    assert load_config(path, env={}).storage.logs_url == "s3://team-logs/prod"
    env = {"LOOPWRIGHT_STORAGE__LOGS_URL": "", "LOOPWRIGHT_STORAGE__ENDPOINT_URL": ""}
    assert load_config(path, env=env).storage.logs_url == ""
    assert check_logs_url("s3://team.logs-2") is None


def test_a_home_with_logs_on_object_storage_keeps_the_rest_in_its_folder(tmp_path):
    home = DataHome(tmp_path / "h", "s3://team-logs/prod/", "http://127.0.0.1:9000")
    assert home.predictions == ObjectFolder(
        "s3://team-logs/prod/predictions",
        "http://127.0.0.1:9000",
        str(tmp_path / "h" / OBJECTS_CACHE),
    )
    assert str(home.labels) == "s3://team-logs/prod/labels"
    assert (
        str(home.predictions / "date=2026-12-01")
        == "s3://team-logs/prod/predictions/date=2026-12-01"
    )
    assert (home.queue / "x").parent == home.queue and home.seed.name == "seed"
    assert home.registry_file == tmp_path / "h" / "registry.json"
    assert all(isinstance(f, Path) for f in home.folders())
    assert tmp_path / "h" / "predictions" not in home.folders()
    with pytest.raises(StorageError, match="storage.logs_url = 'ftp://x'"):
        DataHome(tmp_path / "h", "ftp://x")


def test_local_copies_are_reused_when_the_size_matches_and_fetched_when_not(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    parts = [
        ObjectFolder("s3://logs/p/date=2026-12-01/part-a.parquet", "", str(cache)),
        ObjectFolder("s3://logs/p/date=2026-12-01/part-b.parquet", "", str(cache)),
    ]
    fetched: list[list[str]] = []

    class FakeFS:  # stands in for s3fs's `cat` (many objects in one call)
        def cat(self, keys, on_error):
            fetched.append(list(keys))
            return {k: b"x" * (3 if k.endswith("a.parquet") else 5) for k in keys}

    monkeypatch.setattr(ObjectFolder, "fs", property(lambda self: FakeFS()))
    sizes = {parts[0].url: 3, parts[1].url: 5}
    paths = local_copies(parts, sizes)
    assert paths == [str(cache / "logs/p/date=2026-12-01/part-a.parquet"),
                     str(cache / "logs/p/date=2026-12-01/part-b.parquet")]  # fmt: skip
    assert [Path(p).read_bytes() for p in paths] == [b"xxx", b"xxxxx"]
    assert local_copies(parts, sizes) == paths and len(fetched) == 1  # copies reused
    sizes[parts[1].url] = 9  # a copy of the wrong size (cut short) is fetched again
    local_copies(parts, sizes)
    assert fetched[-1] == ["logs/p/date=2026-12-01/part-b.parquet"]
    assert not list(cache.rglob("*.tmp"))


def test_compaction_leaves_object_storage_logs_alone_and_says_so(tmp_path):
    home = DataHome(tmp_path / "h", "s3://team-logs/prod", "http://127.0.0.1:9")
    report = compact_log(home, "predictions")
    assert report.groups == 0 and report.partitions == 0
    assert "not supported yet" in report.skipped[0]


def test_the_next_open_removes_copies_a_dead_reader_left_half_written(tmp_path):
    import os
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that is gone
    home = DataHome(tmp_path / "h", "s3://team-logs/prod", "http://127.0.0.1:9")
    folder = tmp_path / "h" / OBJECTS_CACHE / "team-logs/prod/predictions/date=2026-12-01"
    folder.mkdir(parents=True)
    stale = folder / f".part-a.parquet.{dead.pid}-0123abcd.tmp"
    live = folder / f".part-b.parquet.{os.getpid()}-0123abcd.tmp"
    kept = folder / "part-a.parquet"
    for p in (stale, live, kept):
        p.write_bytes(b"x")
    from storage.maintenance import clean_home

    assert clean_home(home) == 1
    assert not stale.exists() and live.exists() and kept.exists()
