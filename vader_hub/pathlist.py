"""Files of paths, one per line: the one format of training lists, ``eval split`` output and photo lists.

    photos/a.jpg            # relative paths are relative to the list's own folder
    /data/b.png             # absolute paths are used as they are

A ``#`` at the start of a line, or after whitespace, starts a comment; blank lines are skipped. So a
list means the same thing from any working directory, and a folder of photos moves with its lists.
Every writer writes paths that way: relative to the list's folder when they lie below it, else
absolute.
"""
import os
import re
from pathlib import Path
from typing import Iterable, List, Sequence, Union

from .fileio import atomic_write

PathLike = Union[str, os.PathLike]
_COMMENT = re.compile(r"(^|\s)#.*$")
# The image files a folder of photos is read for, wherever a folder stands for its photos.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a visible file with an image suffix (hidden ones are temporaries, not photos)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def read_path_list(path: PathLike) -> List[Path]:
    """The paths a list file names, in file order, resolved against the list's folder.

    Args:
        path: The list file.

    Returns:
        One path per listed line: absolute entries as written, relative ones joined to the list's folder.

    Raises:
        FileNotFoundError: If the list file does not exist.
    """
    path = Path(path)
    lines = (_COMMENT.sub("", line).strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [_resolved(Path(line), path.parent) for line in lines if line]


def write_path_list(path: PathLike, paths: Iterable[PathLike], comments: Sequence[str] = ()) -> Path:
    """Write a list file atomically: each path relative to the list's folder if below it, else absolute.

    Args:
        path: The list file to write (its folder is created).
        paths: The paths to list, relative to the current directory or absolute.
        comments: Lines to append as ``# ...`` comments (e.g. files that were skipped, and why).

    Returns:
        ``path``.

    Raises:
        ValueError: If a path or comment holds a line break, or a path would read back as a comment.
    """
    path = Path(path)
    folder = path.parent.resolve()
    lines = [_listed(Path(p), folder) for p in paths]
    for text in comments:
        if "\n" in text or "\r" in text:
            raise ValueError(f"a path-list comment cannot hold a line break: {text!r}")
    atomic_write(path, "".join(f"{line}\n" for line in lines) + "".join(f"# {text}\n" for text in comments))
    return path


def _resolved(entry: Path, folder: Path) -> Path:
    return entry if entry.is_absolute() else folder / entry


def _listed(entry: Path, folder: Path) -> str:
    absolute = entry.resolve()
    text = str(absolute.relative_to(folder)) if absolute.is_relative_to(folder) else str(absolute)
    if "\n" in text or "\r" in text or _COMMENT.search(text):
        raise ValueError(f"{text!r} cannot go into a path list: it holds a line break or ' #', which starts a comment")
    return text
