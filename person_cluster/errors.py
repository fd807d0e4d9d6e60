"""The one base class of every error a user causes or can fix: a bad config value, a missing or altered model file,
an unusable input, a cache made with other settings, a bad truth file. Their message is one line for the user; the
CLI catches this class once. Each subclass also keeps the built-in type it had (ValueError, RuntimeError)."""


class PersonClusterError(Exception):
    """An error whose message is one line for the user."""
