"""Ingest: files and event APIs in, validated and normalised, bad input quarantined."""
