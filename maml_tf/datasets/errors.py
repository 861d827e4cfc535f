"""The one error a missing or incomplete dataset raises."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is missing or incomplete; the message says what to put where and
    which command prepares it."""
