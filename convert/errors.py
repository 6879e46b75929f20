"""The one exception bit-convert raises for bad input."""

from __future__ import annotations


class ConvertError(Exception):
    """A checkpoint or an option bit-convert cannot use; the message names the file or tensor.

    The command line prints the message on one line and exits non-zero.
    """
