"""Persons: golden records over source records, stable person ids, merges and their history."""
