"""What webhook delivery needs at run time, made once by the application (app.state.webhooks)."""

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mutualcredit.config import Settings
from mutualcredit.federation import crypto
from mutualcredit.webhooks.sender import Sender


@dataclass
class Webhooks:
    """The sessions, settings and outbound HTTP client (sender.py: the egress address policy,
    no redirects, kept-alive connections) of webhook deliveries. `due` is set when records
    were sealed (new events, perhaps), by this process's sealer or, in the delivery process,
    by its listener (process.py): it wakes the delivery loops."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    sender: Sender
    _secret_key: bytes | None = None
    due: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def secret_key(self) -> bytes:
        """The deployment's sealing key (the one federation seals its keys under)."""
        if self._secret_key is None:
            self._secret_key = crypto.load_secret_key(
                self.settings.secret_key, self.settings.data_dir
            )
        return self._secret_key
