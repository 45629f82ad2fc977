"""Settings, read from the environment (prefix MUTUALCREDIT_) and from arguments of the CLI."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "mutualcredit"


class Settings(BaseSettings):
    """Every knob of the service. Unset `database_url` means: run an embedded PostgreSQL."""

    model_config = SettingsConfigDict(env_prefix="MUTUALCREDIT_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql:// URL of the server to use. Unset: start an embedded PostgreSQL.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded PostgreSQL keeps its data (when database_url is unset).",
    )
    require_database_url: bool = Field(
        default=False,
        description="Refuse to start an embedded PostgreSQL (the container image sets this).",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1, le=64)
    pool_size: int = Field(default=10, ge=1, le=200)
    max_body_bytes: int = Field(default=65_536, ge=1024)
    pending_ttl_seconds: int = Field(
        default=86_400, ge=1, description="Expiry of a pending trade created without expires_at."
    )
    request_ttl_seconds: int = Field(
        default=7 * 86_400, ge=1, description="Expiry of a payment request created without one."
    )
    sweep_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often each worker runs the background jobs."
    )
    trade_batch_size: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="Most trades booked in one statement (1: no batching). Batches form only "
        "from trades that arrive while earlier ones are being booked: no timer, no added wait.",
    )
    trade_batch_flushers: int = Field(
        default=4, ge=1, le=64, description="Batches in flight at once, per worker."
    )
    rate_limit_per_second: float = Field(
        default=500, ge=0, description="Requests per second per API key, per worker (0: off)."
    )
    rate_limit_burst: int = Field(default=1000, ge=1)
    public_url: str | None = Field(
        default=None,
        description="The base URL peers reach this deployment at (its federation descriptor "
        "names it). Default: http://<host>:<port>.",
    )
    secret_key: str | None = Field(
        default=None,
        description="32 bytes, base64url: seals the networks' private signing keys. Unset: "
        "kept in <data_dir>/secret.key, created on first use (mode 0600).",
    )
    federation_ttl_seconds: int = Field(
        default=60, ge=2, description="Expiry of a cross-network trade at its origin."
    )
    federation_hop_margin_seconds: float = Field(
        default=5.0, gt=0, description="How much shorter each hop's expiry is than the last."
    )
    federation_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long one call to a peer may take."
    )
    federation_retry_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait between two deliveries of a transfer."
    )
    federation_clock_skew_seconds: int = Field(
        default=300, ge=1, description="Signed requests older (or newer) than this are refused."
    )
    outbound_allow_private: bool = Field(
        default=False,
        description="Allow outbound calls (to peers) to loopback, private and link-local "
        "addresses: for tests and federations on one host or one private network.",
    )
    federation_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often each worker delivers due transfers."
    )
    log_level: str = "info"
    log_format: str = Field(default="json", pattern="^(json|text)$")
