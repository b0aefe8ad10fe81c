"""Tenants, sources (write keys), users, roles, API tokens, and the audit log."""
