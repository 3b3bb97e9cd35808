"""Configuration through the real binary: flags > STRATA_* env > TOML file >
defaults, `--print-config`, and startup refused with the key named."""

from __future__ import annotations

import os
import subprocess
import tomllib

from conftest import BINARY


def run(args, env=None, cwd=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    full_env.update(env or {})
    return subprocess.run([str(BINARY), "serve", *args], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=30)


def test_precedence_flags_env_file_defaults(tmp_path):
    config = tmp_path / "strata.toml"
    config.write_text(
        'listen = "127.0.0.1:1111"\n'
        'http_listen = "127.0.0.1:1112"\n'
        "default_partitions = 3\n"
        'log_level = "debug"\n')
    done = run(["--config", str(config), "--listen", "127.0.0.1:2222", "--print-config"],
               env={"STRATA_LISTEN": "127.0.0.1:3333", "STRATA_DEFAULT_PARTITIONS": "5"})
    assert done.returncode == 0, done.stderr
    effective = tomllib.loads(done.stdout)
    assert effective["listen"] == "127.0.0.1:2222"          # flag over env and file
    assert effective["default_partitions"] == 5              # env over file
    assert effective["http_listen"] == "127.0.0.1:1112"      # file over default
    assert effective["log_level"] == "debug"
    assert effective["wal_segment_bytes"] == 64 * 1024 * 1024  # default
    assert effective["auto_create_topics"] is True


def test_zero_configuration_prints_the_defaults(tmp_path):
    done = run(["--print-config"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    effective = tomllib.loads(done.stdout)
    assert effective["listen"] == "127.0.0.1:9092"
    assert effective["http_listen"] == "127.0.0.1:9080"
    assert effective["data_dir"] == "./strata-data"
    assert not (tmp_path / "strata-data").exists(), "--print-config must not touch the data dir"


def test_bad_configuration_stops_startup_naming_the_key(tmp_path):
    config = tmp_path / "strata.toml"
    data = tmp_path / "data"
    cases = [
        ("file: unknown key", 'listen = "127.0.0.1:0"\nlisten_adress = "x"\n', {}, [],
         "listen_adress"),
        ("file: bad value", "default_partitions = 0\n", {}, [], "default_partitions"),
        ("file: wrong type", 'wal_segment_bytes = "big"\n', {}, [], "wal_segment_bytes"),
        ("env: bad value", "", {"STRATA_DEFAULT_PARTITIONS": "many"}, [], "default-partitions"),
        ("flag: bad address", "", {}, ["--listen", "nowhere"], "listen"),
        ("flag: bad log level", "", {}, ["--log-level", "loud=="], "log_level"),
        ("flag: bad log format", "", {}, ["--log-format", "xml"], "log_format"),
    ]
    for what, text, env, flags, key in cases:
        config.write_text(text)
        done = run(["--config", str(config), "--data-dir", str(data), *flags], env=env)
        assert done.returncode != 0, f"{what}: started anyway"
        assert key in done.stderr, f"{what}: error does not name {key!r}: {done.stderr}"
        assert "panicked" not in done.stderr, f"{what}: {done.stderr}"
