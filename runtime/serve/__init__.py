"""bit-serve: an OpenAI-compatible server with continuous batching (bitllm.runtime.serve)."""
