"""bitllm.runtime: the native library's bindings and everything that runs a model."""
