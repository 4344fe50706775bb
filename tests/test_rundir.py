import json

import pytest

from prefrl.rundir import RunDir


def test_run_dir_config_round_trip_and_clear_error(tmp_path):
    run = RunDir.create(tmp_path / "r", "baseline", "CartPole-v1", 0)
    run.write_config({"env_id": "CartPole-v1", "steps": 5})
    assert run.read_config() == {"env_id": "CartPole-v1", "steps": 5, "format_version": 1}
    assert json.loads(run.config_path.read_text())["steps"] == 5
    with pytest.raises(FileNotFoundError, match="not a prefrl run directory"):
        RunDir(tmp_path / "nothing").read_config()
