"""The one exception the data package raises for bad input or missing data."""


class DatasetError(Exception):
    """A dataset cannot be loaded: missing or empty directory, no network for a
    required download, an unknown dataset name, bad arguments. The message says
    what was expected and where."""
