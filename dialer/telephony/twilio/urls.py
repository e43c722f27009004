"""Where Twilio reaches us about one attempt: our own ids in the webhook URLs."""

from __future__ import annotations

from dataclasses import dataclass

from dialer.telephony.providers import webhooks_path

#: The provider's name: ``DIALER_PROVIDER=twilio``.
NAME = "twilio"
#: Where the API mounts this package's routes.
WEBHOOKS_PATH = webhooks_path(NAME)


@dataclass(frozen=True, slots=True)
class WebhookUrls:
    """The URLs of one attempt's webhooks under ``base_url`` (``DIALER_PUBLIC_BASE_URL``):
    signatures are computed over them, so they must be the public ones."""

    base_url: str

    def root(self) -> str:
        return f"{self.base_url.rstrip('/')}{WEBHOOKS_PATH}"

    def for_attempt(self, attempt_id: str, campaign_id: str) -> tuple[str, str, str]:
        """(answer URL, status callback URL, AMD callback URL) of one attempt."""
        root = f"{self.root()}/{attempt_id}"
        query = f"?campaign={campaign_id}"
        return f"{root}/twiml{query}", f"{root}/status{query}", f"{root}/amd{query}"

    def opt_out(self, attempt_id: int | str, campaign_id: str) -> str:
        """Where a key pressed during the opening message of one attempt's call goes."""
        return f"{self.root()}/{attempt_id}/opt_out?campaign={campaign_id}"

    def stream_callback(self, attempt_id: int | str, campaign_id: str) -> str:
        """Where the attempt's media stream reports that it started, stopped or failed."""
        return f"{self.root()}/{attempt_id}/stream?campaign={campaign_id}"
