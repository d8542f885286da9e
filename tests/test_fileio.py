import errno
import os
import stat

import pytest

from vader_hub.fileio import atomic_write, sha256_of_file, write_through_temporary


def test_atomic_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "entry.json"
    atomic_write(target, "old")
    atomic_write(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert sorted(path.name for path in target.parent.iterdir()) == ["entry.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "picture.png"
    target.write_bytes(b"old")

    def half_write_then_fail(temporary):
        temporary.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_through_temporary(target, half_write_then_fail)
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["picture.png"]


def test_the_writer_sees_the_destination_suffix(tmp_path):
    seen = []

    def record(temporary):
        seen.append(temporary)
        temporary.touch()

    write_through_temporary(tmp_path / "model.safetensors", record)
    assert seen[0].suffix == ".safetensors" and seen[0].parent == tmp_path


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_written_files_get_the_usual_permissions_not_a_private_temporary_files(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write(tmp_path / "model.safetensors", b"weights")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "model.safetensors").stat().st_mode) == 0o644


def test_sha256_of_file_matches_hashlib_on_a_multi_chunk_file(tmp_path):
    import hashlib

    data = os.urandom(3 * (1 << 22) + 5)
    (tmp_path / "blob").write_bytes(data)
    assert sha256_of_file(tmp_path / "blob").hexdigest() == hashlib.sha256(data).hexdigest()


def _is_folder(descriptor: int) -> bool:
    return stat.S_ISDIR(os.fstat(descriptor).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="folders can be synced on POSIX only")
def test_the_file_then_its_folder_are_synced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda descriptor: synced.append(_is_folder(descriptor)) or real_fsync(descriptor))
    atomic_write(tmp_path / "entry.json", "{}")
    assert synced == [False, True]


def test_a_folder_that_cannot_be_synced_does_not_fail_a_complete_write(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(descriptor):
        if _is_folder(descriptor):
            raise OSError(errno.EINVAL, "Invalid argument")  # what some FUSE and network mounts answer
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic_write(tmp_path / "entry.json", "{}")
    assert (tmp_path / "entry.json").read_text() == "{}"
