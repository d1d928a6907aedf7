"""Errors that name the file and field at fault and say how to fix it."""


class LTHError(Exception):
    """Base class of this project's clear, user-facing errors."""


class ConfigError(LTHError, ValueError):
    """A params file, a parameter value or a name (model, dataset, setting) is wrong."""


class DatasetMissingError(LTHError, FileNotFoundError):
    """The dataset is neither on disk nor downloadable."""


class CheckpointError(LTHError):
    """A checkpoint or run file is corrupt, truncated or does not fit the model."""


class MaskError(LTHError, ValueError):
    """A mask does not fit the model or its pruning profile."""
