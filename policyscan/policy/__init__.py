"""Policies as data: the schema and loader, the condition language, and the engine."""
