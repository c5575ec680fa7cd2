"""Errors the library raises. The CLI turns each into one line on stderr and an exit code."""


class HarmcliError(Exception):
    """Base class: a problem a user can act on. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM) turned into an exception, so that a run stops as cleanly as on Ctrl-C.

    A KeyboardInterrupt, so every clean-up written for Ctrl-C runs for it too. ``exit_code`` is 128 + the
    signal number, the shell's convention (143 for SIGTERM).
    """

    def __init__(self, signum: int, name: str):
        super().__init__(name)
        self.signum, self.name = signum, name
        self.exit_code = 128 + signum


class UsageError(HarmcliError):
    """The command line itself is wrong (conflicting or missing options)."""

    exit_code = 2


class ImageReadError(HarmcliError):
    """An input image is missing, empty, truncated, not an image, or too large."""


class ImageWriteError(HarmcliError):
    """An output could not be written (bad extension, would overwrite an input, disk error)."""


class OutputExistsError(ImageWriteError):
    """An output that must not be replaced exists (or appeared while it was being written). ``path``: which."""

    def __init__(self, message: str, path=None):
        super().__init__(message)
        self.path = path


class InputMismatchError(HarmcliError):
    """Inputs do not fit together: different sizes, no mask, empty background, ..."""


class WeightsError(HarmcliError):
    """A weights file is missing, not valid safetensors, or does not match the model."""


class DeviceError(HarmcliError):
    """The requested compute device is not available."""


class AdjustmentError(HarmcliError):
    """An adjustment (curves / shading) file is malformed or has invalid values."""


class DatasetError(HarmcliError):
    """A dataset folder does not have the expected layout."""


class BackendError(HarmcliError):
    """The requested inference engine (ONNX Runtime, PyTorch) is not installed or cannot serve this request."""
