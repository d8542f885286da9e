"""Two gloo processes under torchrun compute what one process computes; the helpers know their process."""

import dataclasses
import json
import subprocess
import sys

import torch
import torch.distributed as dist

from vader_hub.train.distributed import has_process_group, is_distributed, is_main_process, world_size
from vader_hub.train.encoders import build_encoder

from .test_resume import REPO, environment, trainer_command


def logged_losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def initial_weights(config):
    """The weights both runs start from: the trainer seeds, then builds the encoder (the key encoder is its copy)."""
    torch.manual_seed(config.seed)
    return build_encoder(config, torch.device("cpu")).state_dict()


def test_two_processes_match_one_process(tiny_config, tmp_path):
    # a moderate learning rate: the smoke preset's high one amplifies float round-off step by step
    config = dataclasses.replace(tiny_config, steps=3, checkpoint_every=3, base_lr=0.1)
    single_dir, double_dir = tmp_path / "one", tmp_path / "two"
    single = subprocess.Popen(trainer_command(config, single_dir), env=environment(), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    command = trainer_command(config, double_dir)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                *command[1:]]
    double = subprocess.run(torchrun, env=environment(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    assert single.wait(timeout=300) == 0, single.stderr.read().decode()[-3000:]

    assert torch.allclose(torch.tensor(logged_losses(double_dir)), torch.tensor(logged_losses(single_dir)),
                          rtol=1e-5)
    one = torch.load(single_dir / "checkpoint.pt", weights_only=True)
    two = torch.load(double_dir / "checkpoint.pt", weights_only=True)
    initial = initial_weights(config)
    for part in ("encoder", "momentum_encoder"):
        for name, tensor in one[part].items():
            if tensor.is_floating_point():
                # The runs differ only in the order of float sums (gradients all-reduced, BN statistics
                # gathered), so they differ by round-off carried through the updates: bound it by how far
                # training moved the tensor, not by its size (a bias that starts at 0 is all update), plus
                # a few float32 ulps of its values (a scale that barely moved).
                error = (two[part][name] - tensor).norm()
                moved = (tensor - initial[name]).norm()
                assert error <= 1e-2 * moved + 1e-6 * tensor.norm(), \
                    f"{part}.{name} differs by {error:.2e}; training moved it by {moved:.2e}"
    changed = [name for name, tensor in one["encoder"].items()
               if tensor.is_floating_point() and not torch.equal(tensor, one["momentum_encoder"][name])]
    assert changed, "training must have moved the encoder away from the momentum encoder"
    assert torch.allclose(two["queue"]["keys"], one["queue"]["keys"], atol=1e-5)
    assert torch.equal(two["queue"]["ids"], one["queue"]["ids"])


def test_helpers_answer_from_the_process_group_or_else_from_torchruns_rank(monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "1")  # a torchrun worker after it left the group
    assert not has_process_group() and world_size() == 1 and not is_distributed() and not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        monkeypatch.setenv("RANK", "3")  # the group's own rank wins
        assert has_process_group() and world_size() == 1 and not is_distributed() and is_main_process()
    finally:
        dist.destroy_process_group()
