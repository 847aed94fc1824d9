"""`banking-cli up` (local development mode) makes random keys once per data folder, 0600, and the CLI
and the scripts read the user-token key from there when nothing else names one."""

from __future__ import annotations

import stat
from pathlib import Path

from cli.core.config import LOCAL_SECRETS_FILE, load_config, local_secrets


def test_up_makes_distinct_random_keys_once_per_data_folder(tmp_path: Path) -> None:
    assert local_secrets(tmp_path, create=False) is None
    made = local_secrets(tmp_path, create=True)
    assert made is not None
    assert len(set(made.values())) == 3
    assert all(len(value) >= 32 for value in made.values())
    assert stat.S_IMODE((tmp_path / LOCAL_SECRETS_FILE).stat().st_mode) == 0o600
    assert local_secrets(tmp_path, create=True) == made  # the same folder keeps its keys
    assert local_secrets(tmp_path / "other", create=True) != made


def test_the_cli_reads_the_data_folders_key_unless_told_another(tmp_path: Path) -> None:
    made = local_secrets(tmp_path, create=True)
    assert made is not None
    environ = {"BANKING_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    assert load_config(environ).jwt_secret == made["jwt_secret"]
    assert load_config({**environ, "JWT_SECRET": "x" * 40}).jwt_secret == "x" * 40
    assert load_config({"BANKING_DATA_DIR": str(tmp_path / "none"), "HOME": str(tmp_path)}).jwt_secret == ""
