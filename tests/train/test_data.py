"""Data: folder trees and path files, unreadable images skipped and counted, deterministic samples."""

import dataclasses
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from vader_hub.train.data import ResumableSampler, ViewPairDataset, list_images, read_image


@pytest.fixture
def messy_dir(photo_dir, tmp_path):
    """The photos plus a text file, a non-image with an image suffix, an empty file and a truncated JPEG."""
    root = tmp_path / "messy"
    shutil.copytree(photo_dir, root)
    (root / "notes.txt").write_text("not an image")
    (root / "a" / "fake.jpg").write_bytes(b"this is not a jpeg")
    (root / "b" / "empty.png").write_bytes(b"")
    jpeg = next(root.rglob("*.jpg")).read_bytes()
    (root / "b" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])  # header fine, data cut
    return root


def test_folder_tree_lists_readable_images_and_counts_the_rest(messy_dir):
    images = list_images(messy_dir)
    names = {path.name for path in images.paths}
    assert len(images.paths) == 17 and "truncated.jpg" in names  # its header is readable
    assert sorted(path.split("/")[-1] for path, _ in images.skipped) == ["empty.png", "fake.jpg"]
    assert images.paths == sorted(images.paths)
    assert list_images(messy_dir).fingerprint() == images.fingerprint()


def test_hidden_files_and_folders_are_not_photos(photo_dir, tmp_path):
    root = tmp_path / "with-hidden"
    shutil.copytree(photo_dir, root)
    photo = next(root.rglob("*.jpg"))
    shutil.copyfile(photo, photo.with_name(".photo.123-abcd.tmp.jpg"))  # an interrupted atomic write
    (root / ".thumbnails").mkdir()
    shutil.copyfile(photo, root / ".thumbnails" / "thumb.jpg")
    assert list_images(root).paths == [root / path.relative_to(photo_dir) for path in list_images(photo_dir).paths]


def test_a_file_of_paths_resolves_relative_paths_and_skips_missing_ones(photo_dir, tmp_path):
    listed = sorted(photo_dir.rglob("*.jpg"))[:3]
    path_file = photo_dir / "list.txt"
    path_file.write_text(f"# three photos\n{listed[0].relative_to(photo_dir)}\n{listed[1]}  # absolute\n\n"
                         f"{listed[2].relative_to(photo_dir)}\nmissing.jpg\n")
    images = list_images(path_file)
    assert images.paths == listed
    assert [reason.split(":")[0] for _, reason in images.skipped] == ["FileNotFoundError"]


def test_no_readable_images_and_missing_sources_are_clear_errors(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(ValueError, match="no readable images.*bad.jpg"):
        list_images(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images(tmp_path / "nowhere")


def test_an_image_that_fails_to_decode_is_replaced_and_counted(messy_dir, tiny_config):
    images = list_images(messy_dir)
    dataset = ViewPairDataset(images, tiny_config)
    broken = [path.name for path in images.paths].index("truncated.jpg")
    sample = dataset[(0, broken)]
    assert sample["load_failures"] == 1 and sample["image_id"] == (broken + 1) % len(images.paths)
    assert dataset[(0, 0)]["load_failures"] == 0


def test_samples_are_a_pure_function_of_seed_epoch_and_index(photo_dir, tiny_config):
    dataset = ViewPairDataset(list_images(photo_dir), tiny_config)
    first, again, next_epoch = dataset[(0, 3)], dataset[(0, 3)], dataset[(1, 3)]
    assert all(torch.equal(torch.as_tensor(first[k]), torch.as_tensor(again[k])) for k in first)
    assert not torch.equal(first["query_view"], next_epoch["query_view"])
    assert first["query_view"].shape == (3, 64, 64) and first["query_view"].dtype == torch.uint8
    assert first["query_cells"].shape == (16,) and first["key_points"].shape == (16, 2)
    reseeded = ViewPairDataset(list_images(photo_dir), dataclasses.replace(tiny_config, seed=1))
    assert not torch.equal(reseeded[(0, 3)]["query_view"], first["query_view"])


def test_a_worker_gives_the_same_batches_as_the_main_process(photo_dir, tiny_config):
    dataset = ViewPairDataset(list_images(photo_dir), tiny_config)
    batches = []
    for workers in (0, 1):
        sampler = ResumableSampler(len(dataset), 4, 1, 0, seed=0)
        batches.append(list(DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=workers)))
    assert all(torch.equal(a[k], b[k]) for a, b in zip(*batches, strict=True) for k in a)


def test_ranks_split_each_global_batch_interleaved_across_epochs_and_from_any_step():
    def items(world, rank, first=0, end=12, offset=0):
        sampler = ResumableSampler(50, 8, world, rank, seed=3)
        sampler.set_steps(first, end, epoch_offset=offset)
        assert len(list(sampler)) == len(sampler)
        return list(sampler)

    single = items(1, 0)
    assert len(single) == 12 * 8  # 6 full batches per epoch, two epochs
    for epoch in range(2):
        in_epoch = [index for e, index in single if e == epoch]
        assert len(in_epoch) == 48 and len(set(in_epoch)) == 48  # no repeats within an epoch
    for rank in range(2):
        assert items(2, rank) == single[rank::2]
    assert items(1, 0, first=4) == single[4 * 8:]
    assert items(2, 1, first=7) == single[7 * 8 + 1::2]
    assert {e for e, _ in items(1, 0, offset=100)} == {100, 101}
    with pytest.raises(ValueError, match="fewer than one batch"):
        ResumableSampler(5, 8, 1, 0, seed=0)


def test_read_image_resizes_the_short_side(photo_dir):
    path = next(photo_dir.rglob("*.png"))
    image = read_image(path, short_side=50)
    assert image.dtype == torch.uint8 and image.shape[0] == 3 and min(image.shape[1:]) == 50
