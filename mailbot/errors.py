"""The small vocabulary of failure, mapped to protocol answers at each adapter's boundary.

``Ignore`` → the message is dropped on purpose (logged with its reason);
``Reject`` → permanent (SMTP 5xx, exit 65); ``Retry`` → transient (SMTP 4xx, exit 75,
backoff).  Anything else that escapes the pipeline sends the message to quarantine.
"""


class MailbotError(Exception):
    """Base of every error mailbot raises on purpose."""


class ConfigError(MailbotError):
    """The configuration is unusable; the message names the key."""


class Ignore(MailbotError):
    """Drop this message on purpose; the argument is the reason."""


class Reject(MailbotError):
    """A permanent failure: the sender must not retry."""


class Retry(MailbotError):
    """A transient failure: the sender (or our own loop) should try again later."""


class SchemaError(MailbotError):
    """The database schema is not the one this code expects."""
