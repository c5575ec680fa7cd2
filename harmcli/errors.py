"""Errors the library raises. The CLI turns each into one line on stderr and an exit code."""


class HarmcliError(Exception):
    """Base class: a problem a user can act on. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(HarmcliError):
    """The command line itself is wrong (conflicting or missing options)."""

    exit_code = 2


class ImageReadError(HarmcliError):
    """An input image is missing, empty, truncated, not an image, or too large."""


class ImageWriteError(HarmcliError):
    """An output could not be written (bad extension, would overwrite an input, disk error)."""


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
