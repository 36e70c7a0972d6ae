"""mailbot: a support-mailbox daemon."""

__version__ = "0.1.0"
