"""The exceptions kaldilite raises for problems a user can fix.

Every message is one line that names the file (and line, when there is one), what is wrong
and what to do. The CLI prints such errors as `kaldilite VERB: error: MESSAGE` and exits 1;
anything else is a bug and keeps its traceback.
Like pynini's, these also subclass the builtin that fits, so callers may catch either.
"""


class KaldiliteError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""


class InputError(KaldiliteError, ValueError):
    """Malformed or inconsistent input: a data dir, lexicon, config, grammar, model."""


class AudioError(InputError):
    """Audio that cannot be used as it is: unreadable, wrong rate, stereo, too short."""


class DimensionMismatchError(InputError):
    """Features whose dimension does not match what a model or transform expects."""


class MissingFileError(KaldiliteError, FileNotFoundError):
    """A file a step needs is not there."""


class DeviceError(KaldiliteError, OSError):
    """An audio device that is missing or cannot do what was asked."""


def where(path, line=None):
    """Format a location as `path:line` (or just `path`) for error messages."""
    return f"{path}:{line}" if line is not None else f"{path}"
