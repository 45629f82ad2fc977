"""What federation needs at run time, made once by the application (app.state.federation)."""

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mutualcredit.config import Settings
from mutualcredit.federation import crypto


@dataclass
class Federation:
    """The sessions, settings and HTTP client of federation's own transactions and calls."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    http: httpx.AsyncClient
    _secret_key: bytes | None = None

    @property
    def secret_key(self) -> bytes:
        """Loaded when federation first needs it: a deployment that never federates needs
        no secret key (nor a writable data directory)."""
        if self._secret_key is None:
            self._secret_key = crypto.load_secret_key(
                self.settings.secret_key, self.settings.data_dir
            )
        return self._secret_key

    @property
    def public_url(self) -> str:
        return self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"
