"""Adapters: platforms (outside chat services) and storage."""
