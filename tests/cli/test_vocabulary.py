"""One vocabulary on the command line: the same flag for the same thing in every sub-command,
the README's commands use flags that exist, and every command exits by the one status table."""
import argparse
import re
import shlex
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from vader_hub.cli import build_parser, main
from vader_hub.cli.status import DONE_IN_PART, EXIT_STATUSES, NOTHING_DONE

README = Path(__file__).resolve().parents[2] / "README.md"
FORMER_SPELLINGS = {"--arch", "--architecture", "--out-dir"}


Words = Tuple[str, ...]


def _leaf_parsers(parser: argparse.ArgumentParser, path: Words = ()) -> Dict[Words, argparse.ArgumentParser]:
    """Every runnable sub-command's parser, keyed by its words (``("weights", "export")``)."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        return {path: parser}
    leaves = {path: parser} if parser.get_default("func") is not None else {}
    for name, child in subcommands[0].choices.items():
        leaves.update(_leaf_parsers(child, (*path, name)))
    return leaves


def _visible_options(parser: argparse.ArgumentParser) -> Dict[str, argparse.Action]:
    return {flag: action for action in parser._actions if action.help != argparse.SUPPRESS
            for flag in action.option_strings}


LEAVES = _leaf_parsers(build_parser())


@pytest.mark.parametrize("words", list(LEAVES), ids=" ".join)
def test_the_architecture_is_model_and_the_output_is_out(words):
    options = _visible_options(LEAVES[words])
    assert not FORMER_SPELLINGS & set(options), f"vader-hub {' '.join(words)} shows a former spelling"
    for flag, action in options.items():
        if action.dest == "model":
            assert flag == "--model", (words, flag)
        if action.dest in ("out", "out_dir"):
            assert flag == "--out", (words, flag)


def test_every_command_that_writes_takes_out():
    writers = [words for words, parser in LEAVES.items()
               if words[0] not in ("info",) and words not in {("weights", w) for w in ("list", "download", "verify",
                                                                                          "clean", "publish")}]
    missing = [" ".join(words) for words in writers if "--out" not in _visible_options(LEAVES[words])]
    assert not missing, f"commands that write files without --out: {missing}"


def _readme_commands() -> List[List[str]]:
    """The ``vader-hub ...`` and ``python -m vader_hub.train ...`` lines of the README's code blocks."""
    shell_lines, language = [], None
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            language = None if language is not None else (line[3:].strip() or "bash")
        elif language in ("bash", "sh"):
            shell_lines.append(line)
    commands = []
    for line in "\n".join(shell_lines).replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].split("&&")[-1].strip()
        if line.startswith("vader-hub "):
            commands.append(shlex.split(line)[1:])
        elif "-m vader_hub.train" in line:
            commands.append(["train", *shlex.split(line.split("-m vader_hub.train", 1)[1])])
    return commands


def test_the_readme_uses_only_flags_that_help_shows():
    commands = _readme_commands()
    assert len(commands) > 5
    for argv in commands:
        words = next((w for w in sorted(LEAVES, key=len, reverse=True) if tuple(argv[:len(w)]) == w), None)
        assert words is not None, f"README: no such command: vader-hub {' '.join(argv)}"
        options = _visible_options(LEAVES[words])
        unknown = [token.split("=")[0] for token in argv if token.startswith("--")
                   and token.split("=")[0] not in options]
        assert not unknown, f"README: `vader-hub {' '.join(argv)}` uses {unknown}, which --help does not show"


def test_the_readme_shows_the_exit_status_table():
    rows = dict(re.findall(r"^\| (\d) \| (.+?) \|$", README.read_text(), flags=re.MULTILINE))
    assert {int(code): text for code, text in rows.items()} == EXIT_STATUSES


def test_former_spellings_still_work_and_say_what_to_use(capsys):
    args = build_parser().parse_args(["convert", "import", "in.pth", "--arch", "vader_r18_fpn", "--out", "t.st"])
    assert args.model == "vader_r18_fpn"
    assert "--arch is now spelled --model" in capsys.readouterr().err
    args = build_parser().parse_args(["train", "--out-dir", "runs/x"])
    assert args.out_dir == "runs/x"
    assert "--out-dir is now spelled --out" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["extract", "missing.png"],
    ["match", "missing-a.png", "missing-b.png"],
    ["eval", "--photos", "missing.txt"],
    ["eval", "split", "missing-folder", "--out", "lists"],
    ["train", "--preset", "smoke", "--data", "missing-folder"],
    ["weights", "export", "missing.pt", "--out", "export"],
    ["weights", "download", "vader_r18_fpn.missing"],
    ["convert", "import", "missing.pth", "--model", "vader_r18_fpn", "--out", "trunk.safetensors"],
    ["convert", "export", "missing.safetensors", "--to", "timm", "--out", "trunk.pth"],
    ["convert", "onnx", "--weights", "missing.safetensors"],
    ["demo", "--weights", "missing.safetensors"],
    ["info", "--model", "vader_r19"],
], ids=lambda argv: " ".join(argv[:2]))
def test_a_bad_input_does_nothing_and_says_so_in_one_line_on_stderr(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == NOTHING_DONE
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith("vader-hub "), captured.err
    assert "Traceback" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_command_that_did_part_of_its_work_exits_with_the_done_in_part_status(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    monkeypatch.setenv("VADER_HUB_MANIFEST", str(broken))
    assert main(["weights", "list"]) == DONE_IN_PART != NOTHING_DONE  # the readable manifests are still listed
    captured = capsys.readouterr()
    assert "vader_r18_fpn.photos57" in captured.out and "left out" in captured.err
