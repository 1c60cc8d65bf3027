"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class DSAssistError(Exception):
    """A problem with the user's input or configuration, stated in one line."""
