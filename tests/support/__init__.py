"""Test helpers: real servers and real processes, no mocks of protocol peers."""
