"""Workflows that plug into the engine. Each package registers one definition on import."""
