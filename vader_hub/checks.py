"""Value rules that every layer shares, each written once: positive integers and yes/no words.

The package's bottom module: it imports nothing of vader_hub, so the weights layer, the models, the
trainer and the command line all check the same thing with the same message.
"""
import argparse
import numbers
import os

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def is_positive_int(value: object) -> bool:
    """True for an integer >= 1 (Python or numpy), False for anything else, ``True``/``False`` included."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def check_positive_int(name: str, value: object) -> None:
    """Refuse anything but a positive integer.

    Args:
        name: What the value is, for the message (an argument or config field name).
        value: The value to check.

    Raises:
        ValueError: ``"<name> must be a positive integer, got <value>"``.
    """
    if not is_positive_int(value):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def positive_int_argument(text: str) -> int:
    """An ``argparse`` type: the integer ``text`` spells, if it is positive.

    Raises:
        argparse.ArgumentTypeError: For anything else, so argparse reports it as a usage error.
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` -> True and ``0/false/no/off`` -> False, in any case and with spaces around.

    Raises:
        ValueError: For any other word.
    """
    lowered = text.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of {', '.join(TRUE_WORDS + FALSE_WORDS)}, got {text!r}")


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a yes word (unset, empty or any other word: no)."""
    return os.environ.get(name, "").strip().lower() in TRUE_WORDS
