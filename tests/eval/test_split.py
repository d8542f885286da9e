"""The held-out split: groups stay on one side, every source is held out, the result is deterministic."""
import argparse
import ast
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from vader_hub.cli import eval as cli
from vader_hub.eval import split as split_module
from vader_hub.eval.split import (
    DEFAULT_RULES,
    SplitRules,
    group_key,
    list_photos,
    load_split_rules,
    source_of,
    split_photos,
)
from vader_hub.pathlist import read_path_list

SPLITS = Path(__file__).resolve().parents[2] / "docs" / "splits"
RULES = load_split_rules(SPLITS / "offline-photos.json")

# The 120 file names that /work/shared/data/offline-photos.sh writes (the curated offline photo set).
CV = """Blender_Suzanne1.jpg HappyFish.jpg aero1.jpg aero3.jpg apple.jpg baboon.jpg blox.jpg board.jpg
box_in_scene.png building.jpg butterfly.jpg fruits.jpg home.jpg left.jpg leuvenA.jpg leuvenB.jpg messi5.jpg
orange.jpg pic1.png pic2.png pic3.png pic4.png pic5.png pic6.png right.jpg rubberwhale1.png rubberwhale2.png
smarties.png squirrel_cls.jpg starry_night.jpg stuff.jpg""".split()
MATE = """Aqua Blinds Dune FreshFlower Garden GreenMeadow LadyBird RainDrops Storm TwoWings Wood YellowFlower""".split()
SK = """astronaut brick chelsea coffee grass gravel hubble_deep_field immunohistochemistry retina rocket""".split()
CURATED = (
    [f"cv_{name}" for name in CV]
    + [f"mate_{name}.jpg" for name in MATE]
    + [f"sk_{name}.png" for name in SK]
    + [f"vid_vtest_{i:04d}.jpg" for i in range(0, 800, 20)]
    + [f"vid_Megamind_{i:04d}.jpg" for i in range(0, 270, 10)]
)
# Photos that show one scene (or one sample pair), written out by hand, independently of the rules.
SAME_SCENE = [
    {"cv_leuvenA.jpg", "cv_leuvenB.jpg"},
    {"cv_left.jpg", "cv_right.jpg"},
    {"cv_rubberwhale1.png", "cv_rubberwhale2.png"},
    {"cv_aero1.jpg", "cv_aero3.jpg"},
    {"cv_apple.jpg", "cv_orange.jpg"},
    {f"cv_pic{i}.png" for i in range(1, 7)},
    {f"vid_vtest_{i:04d}.jpg" for i in range(0, 800, 20)},
    {f"vid_Megamind_{i:04d}.jpg" for i in range(0, 270, 10)},
]


def _side(split, name):
    sides = [side for side in ("train", "eval", "excluded") if name in {p.name for p in getattr(split, side)}]
    assert len(sides) == 1, f"{name} is on {sides}"
    return "train" if sides == ["train"] else "held out"


def test_curated_set_has_120_names():
    assert len(CURATED) == len(set(CURATED)) == 120


@pytest.mark.parametrize("scene", SAME_SCENE, ids=lambda s: sorted(s)[0])
def test_one_scene_stays_on_one_side(scene):
    split = split_photos(CURATED, rules=RULES)
    assert len({_side(split, name) for name in scene}) == 1
    assert len({group_key(Path(name).stem, RULES) for name in scene}) == 1


def test_split_covers_every_photo_once_and_holds_out_each_source():
    split = split_photos(CURATED, rules=RULES)
    names = [p.name for p in split.train + split.eval + split.excluded]
    assert sorted(names) == sorted(CURATED)
    assert 0.15 <= len(split.eval) / len(CURATED) <= 0.20
    assert {source_of(p.stem, RULES) for p in split.eval} == {"sk", "cv", "mate", "vid"}
    assert {source_of(p.stem, RULES) for p in split.train} == {"sk", "cv", "mate", "vid"}


def test_held_out_video_gives_a_few_evenly_spaced_frames():
    split = split_photos(CURATED, rules=RULES)
    videos = Counter(group_key(p.stem, RULES) for p in split.eval if source_of(p.stem, RULES) == "vid")
    assert len(videos) == 1 and list(videos.values()) == [4]
    (video,) = videos
    frames = sorted(int(p.stem.rsplit("_", 1)[1]) for p in split.eval if group_key(p.stem, RULES) == video)
    steps = {b - a for a, b in zip(frames, frames[1:], strict=False)}
    assert max(steps) - min(steps) <= 20 and frames[0] > 0  # spread over the clip, not its first frame
    assert all(group_key(p.stem, RULES) == video for p in split.excluded)


def test_split_ignores_order_and_folders():
    shuffled = CURATED[:]
    random.Random(1).shuffle(shuffled)
    first = split_photos(CURATED, rules=RULES)
    second = split_photos([Path("/elsewhere") / name for name in shuffled], rules=RULES)
    assert [p.name for p in first.eval] == [p.name for p in second.eval]
    assert [p.name for p in first.train] == [p.name for p in second.train]


def test_adding_a_source_keeps_the_others_split():
    before = split_photos(CURATED, rules=RULES)
    after = split_photos(CURATED + [f"other_scene_{k}.jpg" for k in range(5)] + ["mine.png", "yours.png"], rules=RULES)
    assert {p.name for p in before.eval} <= {p.name for p in after.eval}


@pytest.mark.parametrize(
    "stem, key",
    [
        ("vid_Megamind_0040", "vid_megamind"),
        ("cv_leuvenB", "cv_leuven"),
        ("cv_right", "cv_{side}"),
        ("cv_pic5", "cv_pic"),
        ("cv_orange", "cv_apple"),
        ("sk_hubble_deep_field", "sk_hubble_deep_field"),
        ("mate_GreenMeadow", "mate_greenmeadow"),
        ("aloeL", "aloe"),
        ("frame-0007", "frame"),
    ],
)
def test_group_key_rules(stem, key):
    assert group_key(stem, RULES) == key


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no photos"):
        split_photos([])
    with pytest.raises(ValueError, match="twice"):
        split_photos(["a.jpg", "a.jpg", "b.jpg"])
    with pytest.raises(ValueError, match="nothing can be held out"):
        split_photos(["vid_clip_0001.jpg", "vid_clip_0002.jpg"])
    with pytest.raises(ValueError, match="eval_fraction"):
        split_photos(CURATED, eval_fraction=1.5)
    with pytest.raises(FileNotFoundError):
        list_photos(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no image files"):
        list_photos(tmp_path)


def test_list_photos_skips_hidden_files(tmp_path):
    for name in ("a.jpg", "b.PNG", ".a.123-beef.tmp.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in list_photos(tmp_path)] == ["a.jpg", "b.PNG"]


def test_the_shipped_weights_split_is_what_eval_split_gives_for_the_permissive_photo_names():
    """docs/splits/permissive: the lists the shipped weights were trained and evaluated on, by file name."""
    folder = SPLITS / "permissive"
    listed = {name: [p.name for p in read_path_list(folder / f"{name}.txt")] for name in ("train", "eval", "excluded")}
    split = split_photos([Path("photos") / n for names in listed.values() for n in names], rules=RULES)
    assert {name: [p.name for p in getattr(split, name)] for name in listed} == listed
    assert len(listed["train"]) == 57 and not any(n.startswith("mate_") for names in listed.values() for n in names)


def test_the_documented_command_recreates_the_shipped_lists_byte_for_byte(tmp_path):
    """docs/splits/README.md: ``eval split`` with the offline rules file writes the shipped lists exactly."""
    shipped = {name: (SPLITS / "permissive" / f"{name}.txt").read_bytes() for name in ("train", "eval", "excluded")}
    photos = tmp_path / "photos"
    photos.mkdir()
    for listing in shipped.values():
        for name in listing.decode().split():
            (photos / name).write_bytes(b"")  # the split reads only file names
    parser = argparse.ArgumentParser(prog="vader-hub")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "split", str(photos), "--split-rules", str(SPLITS / "offline-photos.json"),
                              "--out", str(photos)])
    assert args.func(args) == 0
    assert {name: (photos / f"{name}.txt").read_bytes() for name in shipped} == shipped


def test_the_rules_file_holds_the_groups_the_library_once_hard_coded():
    assert RULES == SplitRules(
        sources=("sk", "cv", "mate", "vid"), companions={"cv_orange": "cv_apple", "cv_box": "cv_box_in_scene"}
    )


def test_the_default_rules_name_no_photo_set():
    assert DEFAULT_RULES == SplitRules() and not DEFAULT_RULES.sources and not DEFAULT_RULES.companions
    assert {source_of(Path(name).stem) for name in CURATED} == {"other"}
    assert group_key("cv_orange") == "cv_orange" and group_key("cv_leuvenB") == "cv_leuven"
    split = split_photos(CURATED)
    assert sorted(p.name for p in split.train + split.eval + split.excluded) == sorted(CURATED)


def test_the_library_code_holds_no_name_of_the_rules_file():
    """Only docstrings (examples) may mention the offline set's names; no string the code uses does."""
    tree = ast.parse(Path(split_module.__file__).read_text())
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    words = {word for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
             for word in node.value.split()}
    names = set(RULES.sources) | set(RULES.companions) | set(RULES.companions.values())
    assert not names & words


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "JSON object"),
        ("{", "not valid JSON"),
        ('{"source": ["sk"]}', "unknown keys"),
        ('{"sources": "sk"}', "list of file-name prefixes"),
        ('{"sources": ["SK"]}', "lower-case"),
        ('{"sources": ["my_set"]}', "without '_'"),
        ('{"sources": ["other"]}', "unlisted photos"),
        ('{"companions": ["a", "b"]}', "must be an object"),
        ('{"companions": {"Cv_orange": "cv_apple"}}', "lower-case group keys"),
        ('{"companions": {"a": "b", "b": "c"}}', "joins another group"),
    ],
)
def test_bad_rules_files_are_refused(tmp_path, content, message):
    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_split_rules(path)
    with pytest.raises(FileNotFoundError, match="split rules file"):
        load_split_rules(tmp_path / "missing.json")


def test_a_rules_file_changes_only_what_it_names(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"about": "two cameras", "sources": ["cam"], "companions": {"cam_dusk": "cam_dawn"}}))
    rules = load_split_rules(path)
    assert source_of("cam_dusk", rules) == "cam" and source_of("phone_dusk", rules) == "other"
    assert group_key("cam_dusk", rules) == "cam_dawn" and group_key("cam_noon", rules) == "cam_noon"
