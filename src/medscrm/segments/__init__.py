"""Segments (分群): static and dynamic sets of persons defined by the rule DSL."""
