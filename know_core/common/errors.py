"""Exception types shared by the engine, so that the CLI and the dashboard can tell user mistakes from bugs.

Every error a user can cause (bad config, missing data, damaged run folder) derives from :class:`KnowError`; the CLI
turns those into a one-line message and exit code 2, anything else is a bug and keeps its traceback.
"""


class KnowError(Exception):
    """A problem the user can fix; its message says what and how."""


class ConfigError(KnowError, ValueError):
    """A configuration value is out of range or unknown."""


class DataError(KnowError):
    """A dataset is missing, damaged or unusable for the requested experiment."""


class RunStoreError(KnowError):
    """A runs directory or run folder cannot be used (unwritable, missing files, corrupt files)."""


class Cancelled(KnowError):
    """A long operation was stopped on request; nothing half-written is left behind."""


class TrainingDiverged(KnowError):
    """The loss or the weights became NaN or infinite (usually a learning rate far too high); the run stops."""
