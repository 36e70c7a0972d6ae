"""Everything that leaves: rendering, composing, and the outbox sender."""
