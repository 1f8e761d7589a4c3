"""Relational storage: SQLite by default, PostgreSQL for teams."""
