"""Resume: a run killed after a checkpoint and resumed ends bitwise equal to an uninterrupted run."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from vader_hub.train.config import preset

REPO = Path(__file__).resolve().parents[2]


def trainer_command(config, out_dir: Path, *extra: str) -> list[str]:
    """`python -m vader_hub.train` with every field that differs from the smoke preset as a flag."""
    flags = ["--preset", "smoke", "--no-progress", "--out", str(out_dir)]
    smoke = preset("smoke")
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name != "out_dir" and value != getattr(smoke, field.name):
            flag = "--" + field.name.replace("_", "-")
            flags += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return [sys.executable, "-m", "vader_hub.train", *flags, *extra]


def environment() -> dict[str, str]:
    """The repo on the path; one thread per run, so two runs share 2 cores without oversubscription."""
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}


def test_killed_and_resumed_run_is_bitwise_equal_to_an_uninterrupted_one(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, steps=6, checkpoint_every=2)
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    whole = subprocess.Popen(trainer_command(config, whole_dir), env=environment(), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = subprocess.Popen(trainer_command(config, killed_dir), env=environment(), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed_dir / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    stopped_at = torch.load(checkpoint, weights_only=True)["step"]
    assert 2 <= stopped_at < config.steps, "the run must be killed part-way"

    resumed = subprocess.run(trainer_command(config, killed_dir, "--resume", str(killed_dir)), env=environment(),
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert whole.wait(timeout=300) == 0, whole.stderr.read().decode()

    expected = torch.load(whole_dir / "checkpoint.pt", weights_only=True)
    actual = torch.load(checkpoint, weights_only=True)
    assert actual["step"] == expected["step"] == config.steps
    for part in ("encoder", "momentum_encoder"):
        for name, tensor in expected[part].items():
            assert torch.equal(actual[part][name], tensor), f"{part}.{name} differs after resume"
    queue, expected_queue = actual["queue"], expected["queue"]
    assert torch.equal(queue["keys"], expected_queue["keys"]) and torch.equal(queue["ids"], expected_queue["ids"])
    logged = [json.loads(line)["step"] for line in (killed_dir / "log.jsonl").read_text().splitlines()]
    assert logged[-1] == config.steps
