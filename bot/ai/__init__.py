"""The optional AI step: an OpenAI-compatible endpoint that categorises, summarises and reads requests."""
