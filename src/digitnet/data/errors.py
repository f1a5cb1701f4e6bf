"""The error raised for data that cannot be read or fails a check."""


class DataError(ValueError):
    """A data file that is missing, truncated, corrupt or of the wrong shape."""
