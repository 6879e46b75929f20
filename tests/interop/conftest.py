"""The llama.cpp oracle's fixtures (oracle_fixtures.py) for the tests in this folder."""

from tests.interop.oracle_fixtures import (  # noqa: F401
    llama_cpp_file,
    llama_cpp_logits,
    llama_cpp_tree,
    oracle_checkpoint,
)
