"""Errors raised by optimum-wc.

Every error is a ``ValueError`` (or ``TypeError``) subclass, so code written for ``nncf.compress_weights``
that catches ``ValueError`` keeps working, and each message names the argument and what is allowed. Where
``nncf.compress_weights`` refuses an argument, the error has the name of nncf's: ``ValidationError``,
``ParameterNotSupportedError``, ``InvalidGroupSizeError``, ``UnsupportedModelError``.
"""

from __future__ import annotations


class OptimumWCError(Exception):
    """Base class of every error raised by optimum-wc."""


class ValidationError(OptimumWCError, ValueError):
    """An argument has a value that is not allowed (nncf's ``ValidationError``)."""


InvalidArgumentError = ValidationError  # our first name for it


class InvalidArgumentTypeError(OptimumWCError, TypeError):
    """An argument has a type that is not allowed."""


class ParameterNotSupportedError(OptimumWCError, ValueError):
    """An argument, or a combination of them, that nncf refuses too (nncf's ``ParameterNotSupportedError``)."""


UnsupportedArgumentError = ParameterNotSupportedError  # our first name for it


class NotYetSupportedError(UnsupportedArgumentError):
    """An nncf option that optimum-wc does not implement yet."""


class InternalError(OptimumWCError, ValueError):
    """A combination nncf accepts at first and fails on once it meets it, with its ``InternalError``; refused here
    before any work."""


class InvalidGroupSizeError(OptimumWCError, ValueError):
    """The group size does not divide the input-channel count of one or more layers."""


class UnsupportedModelError(OptimumWCError, ValueError):
    """The model has a structure that the requested compression cannot handle."""


class NonFiniteWeightError(OptimumWCError, ValueError):
    """A weight holds NaN or Inf values."""


class ModelNotFoundError(OptimumWCError, OSError):
    """A model id that is neither a local folder nor a repository the Hub can serve."""


class CorruptModelError(OptimumWCError, ValueError):
    """A model file is missing, damaged or truncated (the message names the file)."""


class OutputFolderError(OptimumWCError, ValueError):
    """An output folder that cannot be written atomically: a file, a path under a file, a mount point, or a place
    this process may not write (the message names the path)."""


class HubUploadError(OptimumWCError, OSError):
    """An upload to the Hugging Face Hub failed (network, authentication, the Hub's answer); the message names the
    repository and the cause, and the saved folder is left as it was."""


class MissingExtraError(OptimumWCError, ImportError):
    """A feature whose packages come with an extra that is not installed; the message names the extra."""

    def __init__(self, feature: str, extra: str, missing: str):
        super().__init__(
            f"{feature} needs the packages of the `{extra}` extra (`{missing}` is not installed): "
            f"pip install 'optimum-wc[{extra}]'"
        )
        self.extra = extra
