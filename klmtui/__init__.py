"""klmtui: the Textual app and the command line. Composes `core` and `remote`; holds no domain logic."""

__version__ = "0.1.0"
