"""Resolution of manifest entries against real loopback servers: order, faults, offline, tampering."""
import logging

import pytest
import torch

from vader_hub.weights import WeightsNotFoundError, load_pretrained, read_manifests, resolve_entry
from vader_hub.weights.cache import cached_path
from vader_hub.weights.hf import cached_hf_file

from .helpers import COMMIT, entry_with_sources, small_module, use_manifest

CFG = {"architecture": "vader_r18_fpn", "tag": "test"}


def url_source(url: str) -> dict:
    return {"type": "url", "url": url}


def hf_source(server, filename: str = "model.safetensors") -> dict:
    return {"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": filename,
            "endpoint": server.base_url}


def load_fresh(exported) -> torch.nn.Module:
    model = small_module(seed=99, channels=64)
    load_pretrained(model, CFG)
    return model


def assert_same_outputs(model, exported) -> None:
    x = torch.randn(2, 3, 16, 16)
    model.eval(), exported.module.eval()
    torch.testing.assert_close(model(x), exported.module(x), rtol=0, atol=0)


def the_entry():
    return read_manifests().find("vader_r18_fpn", "test")


def test_url_mirror_download_verify_load(server, exported, tmp_path, monkeypatch):
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [url_source(server.add("/w", exported.data))])])
    assert_same_outputs(load_fresh(exported), exported)
    assert cached_path(the_entry()).read_bytes() == exported.data
    load_fresh(exported)  # the second load comes from the cache: no new request
    assert len(server.requests_for("/w")) == 1


def test_hf_endpoint_through_huggingface_hub(server, exported, tmp_path, monkeypatch):
    server.add_hf("org/vader", COMMIT, "model.safetensors", exported.data)
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [hf_source(server)])])
    assert_same_outputs(load_fresh(exported), exported)
    hub_file = cached_hf_file(the_entry().sources[0])
    assert hub_file is not None and hub_file.read_bytes() == exported.data
    assert hub_file.is_relative_to(tmp_path / "hf_cache")


def test_hf_wrong_bytes_evict_blob_and_pointer(server, exported, tmp_path, monkeypatch):
    server.add_hf("org/vader", COMMIT, "model.safetensors", exported.data[::-1])
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [hf_source(server)])])
    with pytest.raises(WeightsNotFoundError, match="Hugging Face Hub org/vader.*sha256"):
        load_fresh(exported)
    blobs = list((tmp_path / "hf_cache").rglob("blobs/*"))
    pointers = [p for p in (tmp_path / "hf_cache").rglob("snapshots/*/*")]
    assert blobs == [] and pointers == []  # nothing a later huggingface_hub call would return


def test_404_then_500_then_good_mirror(server, exported, tmp_path, monkeypatch):
    server.add_hf("org/vader", COMMIT, "other.safetensors", exported.data)
    sources = [hf_source(server), url_source(server.base_url + "/missing"),
               url_source(server.add("/broken", exported.data, mode="status500")),
               url_source(server.add("/good", exported.data))]
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, sources)])
    assert_same_outputs(load_fresh(exported), exported)
    assert len(server.requests_for("/good")) == 1


def test_when_every_source_fails_the_error_lists_each(server, exported, tmp_path, monkeypatch):
    sources = [hf_source(server), url_source(server.base_url + "/missing"),
               url_source(server.add("/broken", exported.data, mode="status500")),
               url_source(server.add("/wrong", exported.data[::-1]))]
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, sources)])
    with pytest.raises(WeightsNotFoundError) as error:
        load_fresh(exported)
    message = str(error.value)
    for expected in ["vader-hub cache", "Hugging Face cache (org/vader@", "EntryNotFound", "/missing: HTTP 404",
                     "/broken: gave up after 3 attempts: HTTP 500", "/wrong: served bytes with sha256",
                     "vader-hub weights download vader_r18_fpn.test", "pretrained_cfg_overlay"]:
        assert expected in message, expected
    assert list(tmp_path.glob("vader_cache/weights/*/*")) == []  # nothing a later load would use


def test_truncating_mirror_then_good_mirror_resumes_the_partial(server, exported, tmp_path, monkeypatch):
    sources = [url_source(server.add("/cut", exported.data, mode="truncate")),
               url_source(server.add("/good", exported.data))]
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, sources)])
    assert_same_outputs(load_fresh(exported), exported)
    (good,) = server.requests_for("/good")
    assert good.range is not None and good.range.startswith("bytes=")  # only the missing tail was fetched


def test_tampered_cache_is_detected_at_the_next_load(server, exported, tmp_path, monkeypatch, caplog):
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [url_source(server.add("/w", exported.data))])])
    load_fresh(exported)
    cached = cached_path(the_entry())
    tampered = bytearray(cached.read_bytes())
    tampered[-1] ^= 0xFF  # same size, one flipped bit in a tensor: only the hash can tell
    cached.write_bytes(bytes(tampered))
    with caplog.at_level(logging.WARNING, logger="vader_hub.weights.resolve"):
        assert_same_outputs(load_fresh(exported), exported)
    assert "failed verification" in caplog.text
    assert cached.read_bytes() == exported.data and len(server.requests_for("/w")) == 2


def test_tampered_cache_offline_is_an_error_not_a_load(server, exported, tmp_path, monkeypatch):
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [url_source(server.add("/w", exported.data))])])
    load_fresh(exported)
    cached = cached_path(the_entry())
    cached.write_bytes(cached.read_bytes()[:-1] + b"\0")
    monkeypatch.setenv("VADER_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="(?s)offline mode.*sha256 .*the manifest says"):
        load_fresh(exported)


@pytest.mark.parametrize("variable", ["VADER_HUB_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_with_cached_files_uses_no_network(server, exported, tmp_path, monkeypatch, variable):
    server.add_hf("org/vader", COMMIT, "model.safetensors", exported.data)
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [hf_source(server)])])
    load_fresh(exported)
    before = len(server.state.log)
    monkeypatch.setenv(variable, "1")
    assert_same_outputs(load_fresh(exported), exported)
    assert len(server.state.log) == before


def test_offline_without_cache_lists_places_and_remedies(server, exported, tmp_path, monkeypatch):
    sources = [hf_source(server), url_source(server.add("/w", exported.data))]
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, sources)])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as error:
        load_fresh(exported)
    message = str(error.value)
    assert "offline mode" in message and message.count("skipped: offline mode") == 2
    assert str(cached_path(the_entry())) in message and "VADER_HUB_WEIGHTS_DIR" in message
    assert server.state.log == []


def test_plain_http_off_loopback_is_refused_for_mirrors_and_hub_endpoints(exported, tmp_path, monkeypatch):
    sources = [{"type": "url", "url": "http://mirror.invalid/w.safetensors"},
               {"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": "model.safetensors",
                "endpoint": "http://hub.invalid"}]
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, sources)])
    with pytest.raises(WeightsNotFoundError) as error:
        load_fresh(exported)
    assert str(error.value).count("refusing http://") == 2 and "VADER_HUB_ALLOW_HTTP=1" in str(error.value)


def test_local_file_source_is_verified_and_never_deleted(exported, tmp_path, monkeypatch):
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(exported.data[:-1] + b"\0")
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [{"type": "file", "path": str(copy)}])])
    with pytest.raises(WeightsNotFoundError, match="local file .*copy.safetensors: .*sha256"):
        load_fresh(exported)
    assert copy.exists()
    copy.write_bytes(exported.data)
    assert resolve_entry(the_entry()).data == exported.data
