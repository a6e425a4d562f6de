"""Stable-Baselines3's documented examples, ported to refrl (tests/sb3_examples/*.py): each runs as a
script in a fresh directory and checks what it produced.  The lines that differ from SB3's text are
marked "# refrl:" in the scripts (the import; an algorithm refrl lacks replaced by PPO; gymnasium's
VectorEnv API where SB3 has its own VecEnv)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "sb3_examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_the_examples_are_there():
    assert {"quickstart.py", "save_load_evaluate.py", "custom_callback.py", "eval_checkpoint_callbacks.py",
            "stop_callbacks.py", "custom_env.py", "multiprocessing_envs.py", "schedules_policy_kwargs.py",
            "normalization.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_sb3_example_runs(script, tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    source = (EXAMPLES / script).read_text()
    assert "stable_baselines3" not in "\n".join(l for l in source.splitlines() if not l.lstrip().startswith("#")
                                                 and "# refrl:" not in l)
