"""Every import layout, from a checkpoint written the way its project writes it, saved and read back."""
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
import torchvision

from vader_hub.convert import load_trunk, save_trunk
from vader_hub.convert.layouts import LAYOUTS, find_layout
from vader_hub.train.checkpoint import capture_rng_state, save_checkpoint

from . import projects

ARCHITECTURE = "vader_r18_fpn"


def _assert_trunk_is(trunk_state: dict, encoder: torch.nn.Module) -> None:
    """The imported trunk is the encoder's ResNet, tensor for tensor, bitwise."""
    expected = {name: tensor for name, tensor in encoder.state_dict().items() if not name.startswith("fc.")}
    assert set(trunk_state) == {"trunk." + name for name in expected}
    for name, tensor in expected.items():
        imported = trunk_state["trunk." + name]
        assert imported.dtype == tensor.dtype and torch.equal(imported, tensor), name


PROJECTS = {
    "moco-v1": lambda: projects.moco_v1_v2(mlp=False),
    "moco-v2": lambda: projects.moco_v1_v2(mlp=True),
    "moco-v3": projects.moco_v3,
    "pixpro": projects.pixpro,
    "densecl-release": projects.densecl_release,
    "densecl-training": projects.densecl_training,
    "timm-state-dict": projects.timm_state_dict,
    "timm-training": projects.timm_training,
}


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_project_checkpoint_imports_its_online_trunk(project: str, tmp_path: Path) -> None:
    checkpoint = PROJECTS[project]()
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(checkpoint.content, path)
    trunk = load_trunk(path, ARCHITECTURE)
    assert trunk.layout == checkpoint.layout
    assert set(trunk.dropped_keys) == checkpoint.dropped
    assert trunk.filled_keys == []
    assert trunk.source_structure == "ResNet-18 (BasicBlock 2-2-2-2)"
    _assert_trunk_is(trunk.state_dict, checkpoint.encoder)


@pytest.mark.slow
def test_moco_v2_resnet50_checkpoint_imports_into_vader_r50(tmp_path: Path) -> None:
    checkpoint = projects.moco_v1_v2(arch="resnet50", mlp=True)
    torch.save(checkpoint.content, tmp_path / "moco.pth.tar")
    trunk = load_trunk(tmp_path / "moco.pth.tar", "vader_r50_fpn")
    assert trunk.source_structure == "ResNet-50 (Bottleneck 3-4-6-3)"
    _assert_trunk_is(trunk.state_dict, checkpoint.encoder)


def test_torchvision_state_dict_and_ddp_state_dict(tmp_path: Path) -> None:
    network = projects.randomize_(torchvision.models.resnet18(), seed=3)
    torch.save(network.state_dict(), tmp_path / "plain.pth")
    torch.save(torch.nn.DataParallel(network).state_dict(), tmp_path / "ddp.pth")
    plain, ddp = load_trunk(tmp_path / "plain.pth", ARCHITECTURE), load_trunk(tmp_path / "ddp.pth", ARCHITECTURE)
    assert (plain.layout, ddp.layout) == ("torchvision/timm", "ddp")
    _assert_trunk_is(plain.state_dict, network)
    _assert_trunk_is(ddp.state_dict, network)


def test_old_torchvision_file_without_batch_counters_gets_them_filled(tmp_path: Path) -> None:
    network = projects.randomize_(torchvision.models.resnet18(), seed=3)
    state = {name: t for name, t in network.state_dict().items() if not name.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "resnet18-5c106cde.pth")
    trunk = load_trunk(tmp_path / "resnet18-5c106cde.pth", ARCHITECTURE)
    counters = [name for name in trunk.state_dict if name.endswith("num_batches_tracked")]
    assert sorted(trunk.filled_keys) == sorted(counters) and len(counters) == 20
    assert all(trunk.state_dict[name].item() == 0 for name in counters)
    model = timm.create_model(ARCHITECTURE)
    model.load_state_dict(trunk.state_dict, strict=False)
    assert torch.equal(model.trunk.layer3[1].bn2.running_var, network.layer3[1].bn2.running_var)


def test_vader_weights_file_and_trainer_checkpoint(vader_r18: torch.nn.Module, tmp_path: Path) -> None:
    weights = tmp_path / "vader_r18_fpn.safetensors"
    safetensors.torch.save_file(vader_r18.state_dict(), str(weights), {"architecture": ARCHITECTURE})
    trainer = {
        "encoder": vader_r18.state_dict(), "momentum_encoder": vader_r18.state_dict(), "queue": torch.randn(128, 16),
        "queue_ids": torch.zeros(16, dtype=torch.long), "queue_ptr": 0, "optimizer": {}, "scaler": {}, "step": 10,
        "rng": capture_rng_state(), "data_position": {"epoch": 0, "batch": 10}, "config": {"model": ARCHITECTURE},
    }
    save_checkpoint(trainer, tmp_path / "checkpoint.pt")
    from_weights = load_trunk(weights, ARCHITECTURE)
    from_trainer = load_trunk(tmp_path / "checkpoint.pt", ARCHITECTURE)
    assert (from_weights.layout, from_trainer.layout) == ("vader-hub", "vader-hub-trainer")
    _assert_trunk_is(from_weights.state_dict, vader_r18.trunk)
    _assert_trunk_is(from_trainer.state_dict, vader_r18.trunk)
    assert from_weights.dropped_keys == [] and from_weights.source_keys == len(vader_r18.trunk.state_dict())


def test_saved_trunk_reads_back_bitwise(tmp_path: Path) -> None:
    checkpoint = projects.moco_v1_v2(mlp=True)
    torch.save(checkpoint.content, tmp_path / "moco.pth.tar")
    save_trunk(load_trunk(tmp_path / "moco.pth.tar", ARCHITECTURE), tmp_path / "trunk.safetensors")
    again = load_trunk(tmp_path / "trunk.safetensors", ARCHITECTURE)
    assert again.layout == "vader-hub"
    _assert_trunk_is(again.state_dict, checkpoint.encoder)
    with safetensors.safe_open(str(tmp_path / "trunk.safetensors"), "pt") as handle:
        assert handle.metadata() == {"architecture": ARCHITECTURE, "format": "vader-hub-trunk/1",
                                     "source_layout": "moco-v1/v2"}


def test_unknown_layout_lists_top_level_keys_and_prefixes(tmp_path: Path) -> None:
    network = torchvision.models.resnet18()
    content = {"weights": {f"net.backbone.{name}": t for name, t in network.state_dict().items()}, "step": 5}
    torch.save(content, tmp_path / "odd.pth")
    with pytest.raises(ValueError) as error:
        load_trunk(tmp_path / "odd.pth", ARCHITECTURE)
    message = str(error.value)
    assert "'weights' (dict), 'step' (int)" in message
    assert "net. (122)" in message
    assert "try --container weights --prefix 'net.backbone.'" in message


def test_explicit_container_and_prefix_read_an_unknown_layout(tmp_path: Path) -> None:
    network = projects.randomize_(torchvision.models.resnet18(), seed=4)
    content = {"weights": {f"net.backbone.{name}": t for name, t in network.state_dict().items()}}
    torch.save(content, tmp_path / "odd.pth")
    trunk = load_trunk(tmp_path / "odd.pth", ARCHITECTURE, container="weights", prefix="net.backbone.")
    assert trunk.layout == "custom"
    _assert_trunk_is(trunk.state_dict, network)
    with pytest.raises(ValueError, match="no mapping under container 'model'"):
        load_trunk(tmp_path / "odd.pth", ARCHITECTURE, container="model", prefix="")


def test_layout_names_are_unique_and_each_layout_is_reachable() -> None:
    assert len({layout.name for layout in LAYOUTS}) == len(LAYOUTS)
    for layout in LAYOUTS:
        state = {layout.prefix + key: torch.zeros(1) for key in ("conv1.weight", "layer1.0.conv1.weight")}
        content = state if layout.container is None else {layout.container: state}
        if layout.marker:
            content[layout.marker] = "x"
        assert find_layout(content) is layout
