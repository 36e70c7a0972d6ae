"""mail-parser for what ``mailbot.message.parse`` takes from it: bodies, attachments, date.

Its parse also builds two dictionaries of every header, decoded, and parses every
address header with its diagnostics: two thirds of its time (cProfile), none read by mailbot
(``parse`` reads the headers with the standard library, under its own rules).  Both are
left out here; everything else about the object is as mail-parser makes it.
"""

from __future__ import annotations

import mailparser


class MimeWalk(mailparser.MailParser):
    def _build_header_index(self) -> dict[str, list[str]]:
        return {}  # what the address headers' parse reads them from

    def _make_mail(self, complete: bool = True) -> dict[str, object]:
        return {}
