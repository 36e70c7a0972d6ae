"""Service levels: the business calendar, due times per severity, and the reminder sweep."""
