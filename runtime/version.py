"""The installed distribution's version: pyproject.toml states it, this reads it back."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bitllm")
except PackageNotFoundError:  # a source tree run without installing
    __version__ = "0+unknown"
