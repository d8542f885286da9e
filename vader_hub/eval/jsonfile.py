"""Reading the JSON files a user hands to the evaluation (pairs, split rules), with errors that name the file."""
import json
from pathlib import Path
from typing import Union


def read_json(path: Union[str, Path], what: str) -> object:
    """The value a JSON file holds.

    Args:
        path: The file.
        what: What the file is, for the messages (e.g. ``"pairs file"``).

    Returns:
        The parsed value.

    Raises:
        FileNotFoundError: ``"<what> <path> does not exist"``.
        ValueError: If the file is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
