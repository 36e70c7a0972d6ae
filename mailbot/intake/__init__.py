"""Intake adapters: they store raw mail and answer; nothing more."""
