"""The ``webhook`` outbox channel: POST the stored JSON body to the row's URL.

The outcome maps onto the outbox's vocabulary of failure: 2xx is delivered; 429,
5xx, timeouts and connection errors are worth retrying (``TransientDelivery``);
any other answer (4xx: a bad routing key, a malformed event; 3xx: a moved URL) will
not get better by itself (``PermanentDelivery``) and fails the row loudly.

httpx is imported with the first page sent over a webhook, not with this module
(about 1 MB in a daemon that pages by mail or not at all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailbot.outbound.transports import PermanentDelivery, TransientDelivery

if TYPE_CHECKING:
    import httpx

USER_AGENT = "mailbot"


def origin(url: str) -> str:
    """``scheme://host[:port]`` only: a webhook's path or query may hold a token."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}" if rest else url


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = " ".join(response.text.split())
    return text[:limit]


class WebhookTransport:
    """One HTTP client per sender batch; ``recipients[0]`` is the URL."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            self._client = httpx.Client(
                timeout=self.timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    def send(self, envelope_from: str, recipients: list[str], payload: bytes) -> None:
        import httpx

        if not recipients:
            raise PermanentDelivery("webhook row has no URL")
        url = recipients[0]
        where = origin(url)
        try:
            response = self._http().post(
                url, content=payload, headers={"Content-Type": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise TransientDelivery(f"POST {where}: timed out ({exc.__class__.__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientDelivery(f"POST {where}: {exc.__class__.__name__}: {exc}") from exc
        except httpx.InvalidURL as exc:
            raise PermanentDelivery(f"POST {where}: invalid URL: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        error = f"POST {where}: HTTP {status} {_excerpt(response)}".rstrip()
        if status == 429 or status >= 500:
            raise TransientDelivery(error)
        raise PermanentDelivery(error)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
