"""The database: models, engine and queries."""
