"""Is the From address authentic?  Authentication-Results (RFC 8601), read carefully.

Our receiving MTA (OpenDMARC, Rspamd, Postfix with a milter, Exchange, ...) checks
SPF, DKIM and DMARC and prepends an ``Authentication-Results`` header naming itself
(the authserv-id).  Anyone can write such a header into a message, so only the
*topmost* one whose authserv-id equals the configured one is read, and every other is
ignored (RFC 8601 section 5; the MTA should also remove copies of its own id from
incoming mail).  Without a configured authserv-id nothing is read and nothing counts
as authenticated.

Also here: sender-supplied headers that look like ours (``X-Mailbot-*``) are dropped
before anything looks at the message.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from mailbot.message import InboundMail

INTERNAL_HEADER_PREFIX = "x-mailbot-"

_SPACES_AROUND = re.compile(r"\s*([=./])\s*")


@dataclass(frozen=True)
class MethodResult:
    method: str  # dkim, spf, dmarc, ...
    result: str  # pass, fail, none, ...
    properties: dict[str, str]  # "header.d" -> "example.com", "smtp.mailfrom" -> ...


@dataclass(frozen=True)
class AuthResults:
    authserv_id: str
    results: tuple[MethodResult, ...]

    def of(self, method: str) -> tuple[MethodResult, ...]:
        return tuple(r for r in self.results if r.method == method)


def _without_comments(value: str) -> str:
    """Drop (nested) comments, keep quoted strings intact (RFC 5322 CFWS)."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\" and (quoted or depth):
            escaped = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            out.append(char)
            if char == '"':
                quoted = False
            continue
        if char == "(":
            depth += 1
            continue
        if char == ")" and depth:
            depth -= 1
            continue
        if depth:
            continue
        if char == '"':
            quoted = True
        out.append(char)
    return "".join(out)


def _split(value: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings."""
    parts, current, quoted, escaped = [], [], False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_authentication_results(value: str) -> AuthResults | None:
    """One header value → its authserv-id and method results; None if unreadable."""
    clauses = _split(_without_comments(value), ";")
    head = clauses[0].split()
    if not head:
        return None
    authserv_id = _unquote(head[0]).lower()
    results: list[MethodResult] = []
    for clause in clauses[1:]:
        words = _split(_SPACES_AROUND.sub(r"\1", " ".join(clause.split())), " ")
        words = [w for w in words if w]
        if not words or "=" not in words[0]:
            continue  # "none", or junk
        method, _, result = words[0].partition("=")
        method = method.split("/", 1)[0].lower()
        if not method or not result:
            continue
        properties: dict[str, str] = {}
        for word in words[1:]:
            key, sep, prop = word.partition("=")
            if sep and "." in key:
                properties.setdefault(key.lower(), _unquote(prop))
        results.append(MethodResult(method, _unquote(result).lower(), properties))
    return AuthResults(authserv_id, tuple(results))


def trusted_results(mail: InboundMail, authserv_id: str) -> AuthResults | None:
    """The topmost Authentication-Results written by our own MTA, or None."""
    if not authserv_id:
        return None
    wanted = authserv_id.strip().lower()
    for value in mail.headers.get("authentication-results", ()):
        parsed = parse_authentication_results(value)
        if parsed is not None and parsed.authserv_id == wanted:
            return parsed
    return None


def _domain(value: str) -> str:
    value = value.strip().strip("<>").lower().rstrip(".")
    return value.rsplit("@", 1)[-1]


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment, approximated: the same domain, or one inside the other."""
    if not domain or not from_domain:
        return False
    return (
        domain == from_domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    ) and "." in domain


@dataclass(frozen=True)
class Authenticity:
    authenticated: bool
    reason: str


def sender_authenticity(mail: InboundMail, authserv_id: str) -> Authenticity:
    """dmarc=pass, or a DKIM or SPF pass aligned with the From domain, from our own MTA."""
    if mail.from_address is None:
        return Authenticity(False, "no usable From address")
    results = trusted_results(mail, authserv_id)
    if results is None:
        return Authenticity(False, f"no Authentication-Results from {authserv_id or '(none set)'}")
    from_domain = _domain(mail.from_address)
    if any(r.result == "pass" for r in results.of("dmarc")):
        return Authenticity(True, "dmarc=pass")
    for r in results.of("dkim"):
        signer = r.properties.get("header.d") or _domain(r.properties.get("header.i", ""))
        if r.result == "pass" and aligned(_domain(signer), from_domain):
            return Authenticity(True, f"dkim=pass header.d={signer}")
    for r in results.of("spf"):
        envelope = r.properties.get("smtp.mailfrom", "")
        if r.result == "pass" and aligned(_domain(envelope), from_domain):
            return Authenticity(True, f"spf=pass smtp.mailfrom={envelope}")
    found = ", ".join(f"{r.method}={r.result}" for r in results.results) or "no results"
    return Authenticity(False, f"From {from_domain} not authenticated ({found})")


def strip_internal_headers(mail: InboundMail) -> InboundMail:
    """The mail without sender-supplied ``X-Mailbot-*`` headers (they are ours to write)."""
    if not any(name.startswith(INTERNAL_HEADER_PREFIX) for name in mail.headers):
        return mail
    headers = {k: v for k, v in mail.headers.items() if not k.startswith(INTERNAL_HEADER_PREFIX)}
    return dataclasses.replace(mail, headers=headers)
