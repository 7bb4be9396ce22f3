"""The book's own errors: one base, :class:`BookError`.

Every error the helpers raise on purpose (bad input, a missing file, a broken
checkpoint) is a :class:`BookError`, so a command line, a chapter or a reader's script
can catch the book's errors with one ``except BookError`` and print the one-line
message, while a real bug (an ``AttributeError``, a ``ZeroDivisionError``) still shows
its traceback.

Each subclass also derives from the built-in exception a caller would expect
(``ValueError`` for bad input, ``RuntimeError`` for an environment problem), so
``except ValueError`` keeps working. Modules keep their own subclass where a caller
wants to tell them apart (``helpers.loaders.LoaderError``,
``helpers.predictions.PredictionError``, ...).

This module imports nothing from the book: every other module may import it.
"""

from __future__ import annotations

__all__ = ["BookError", "InputError", "EnvironmentProblem"]


class BookError(Exception):
    """Base of every error the book raises on purpose; its message is one line with the
    fix."""


class InputError(BookError, ValueError):
    """An argument, a file's content or a table is not what the function needs."""


class EnvironmentProblem(BookError, RuntimeError):
    """The machine lacks something (a package, a file, a setting) that the call
    needs."""
