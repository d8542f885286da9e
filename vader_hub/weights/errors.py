"""The exceptions of the weights layer.

Each one also derives from the built-in exception a caller would expect (``ValueError`` for bad
data, ``FileNotFoundError`` for weights that cannot be found, ``OSError`` for failed transfers), so
code that catches built-ins keeps working; the messages say what was wrong and what to do.
"""


class WeightsError(Exception):
    """Base class of every error raised by ``vader_hub.weights``."""


class ManifestError(WeightsError, ValueError):
    """A weights manifest is malformed; the message names the file, the entry and the field."""


class ChecksumMismatchError(WeightsError, ValueError):
    """A file's bytes do not match the sha256 (or size) the manifest gives for them."""


class SizeLimitError(WeightsError, ValueError):
    """A server sent more bytes than the manifest's size for the file; the transfer was cut off."""


class DownloadError(WeightsError, OSError):
    """A transfer failed: HTTP error, timeout, deadline, refused URL or too many retries."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """No usable weights file was found; the message lists every place looked in."""


class ArchitectureMismatchError(WeightsError, ValueError):
    """A weights file was exported for another architecture than the model being built."""


class NotAWeightsFileError(WeightsError, ValueError):
    """A file is not a vader-hub safetensors weights file (pickles are never loaded)."""


class StateDictMismatchError(WeightsError, RuntimeError):
    """A state dict's keys or shapes do not match the model's (strict loading)."""


class UnknownModelError(ArchitectureMismatchError):
    """A name is not one of the VADeR models (or pretrained tags) this version of vader-hub registers."""
