"""The layer check of CI (scripts/check_layers.py) passes on prefrl, and fails where it should."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_prefrl_keeps_its_layers() -> None:
    assert _checker().check(ROOT) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_an_import_reaching_up_sideways_or_in_a_ring_is_reported(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "prefrl/__init__.py": "",
            "prefrl/envs/__init__.py": "",
            "prefrl/envs/make.py": "def f():\n    from prefrl.tasks import get_task\n",
            "prefrl/tasks.py": "from prefrl.envs.make import f\n",
            "prefrl/agent/__init__.py": "",
            "prefrl/agent/ppo.py": "from prefrl.reward import sources\n",
            "prefrl/reward/__init__.py": "",
            "prefrl/reward/sources.py": "",
            "prefrl/newthing.py": "",
        },
    )
    problems = _checker().check(root)
    assert "prefrl/envs/make.py:2 imports prefrl.tasks (layer 3 above layer 2)" in problems
    assert any(
        p.startswith("prefrl/agent/ppo.py:1 imports prefrl.reward.sources (layer 3 beside layer 3")
        for p in problems
    )
    assert "import cycle between modules: prefrl.envs.make <-> prefrl.tasks" in problems
    assert any(p.startswith("prefrl/newthing.py: prefrl.newthing is in no layer") for p in problems)
    assert len(problems) == 4


def test_the_script_exits_1_with_the_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _tree(
        tmp_path, {"prefrl/__init__.py": "", "prefrl/errors.py": "import prefrl.cli\n", "prefrl/cli.py": ""}
    )
    assert _checker().main([str(root)]) == 1
    assert "prefrl/errors.py:1 imports prefrl.cli (layer 5 above layer 1)" in capsys.readouterr().err
