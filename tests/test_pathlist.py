"""Path lists: relative entries mean the list's folder from any working directory; writers write them so."""
import os
from pathlib import Path

import pytest

from vader_hub.pathlist import read_path_list, write_path_list


def test_relative_entries_are_relative_to_the_list_folder_wherever_it_is_read_from(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "l.txt").write_text("# a comment line\nphotos/a.jpg\n\n  ../b.png  \n/abs/c.jpg  # trailing comment\n"
                                 "odd#name.jpg\n")
    expected = [lists / "photos/a.jpg", lists / "../b.png", "/abs/c.jpg",
                lists / "odd#name.jpg"]
    for cwd in (tmp_path, lists, tmp_path.parent):
        monkeypatch.chdir(cwd)
        read = read_path_list(os.path.relpath(lists / "l.txt"))
        assert [p.resolve() for p in read] == [Path(os.path.realpath(p)) for p in expected]


def test_written_lists_read_back_to_the_same_files_from_another_folder(tmp_path, monkeypatch):
    (tmp_path / "out" / "photos").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    inside, outside = "out/photos/a.jpg", "elsewhere/b.jpg"
    written = write_path_list("out/train.txt", [inside, tmp_path / outside], comments=["skipped c.jpg: broken"])
    lines = written.read_text().splitlines()
    assert lines == ["photos/a.jpg", str(tmp_path / outside), "# skipped c.jpg: broken"]
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert read_path_list(tmp_path / "out" / "train.txt") == [tmp_path / inside, tmp_path / outside]


@pytest.mark.parametrize("bad", ["a\nb.jpg", "with #comment.jpg", "#hidden.jpg"])
def test_paths_that_would_not_read_back_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="path list"):
        write_path_list(tmp_path / "l.txt", [tmp_path / bad])
    assert not (tmp_path / "l.txt").exists()
