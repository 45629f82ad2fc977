"""Settings, read from the environment (prefix MUTUALCREDIT_) and from arguments of the CLI."""

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The most links one cross-network trade may cross, in the protocol: a transfer names at most
# this many hubs less one (federation.schemas.TransferMessage.via). A deployment may allow fewer.
FEDERATION_MAX_HOPS = 8


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
    # Slow and stalled clients (server.py): the server faces the internet directly, so every
    # phase of a request has a deadline and every worker a bound on what it holds.
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request's line and headers must arrive within this many seconds of the "
        "connection opening (on a kept-alive connection, of the request's first byte).",
    )
    body_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        description="A request's whole body must arrive within this many seconds of its headers.",
    )
    send_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        description="How long a response may wait for a client that does not read it.",
    )
    max_connections: int = Field(
        default=2048,
        ge=1,
        description="Open connections per worker; beyond it, a new connection is answered 503.",
    )
    max_header_bytes: int = Field(
        default=32_768, ge=1024, description="Most bytes of a request's line and headers."
    )
    max_buffered_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=65_536,
        description="Most bytes of request bodies a worker holds at once; a body that would "
        "take it past this is answered 503.",
    )
    keep_alive_timeout_seconds: int = Field(
        default=5, ge=1, description="How long an idle connection is kept open between requests."
    )
    # A stalled database (db.py): bounded waits, so that a request answers 503 within seconds.
    database_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Opening a database connection, its handshake included."
    )
    database_statement_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="One statement: PostgreSQL cancels it after this (statement_timeout), and "
        "the service gives up on an answer one second later.",
    )
    database_pool_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Waiting for a free connection of a pool."
    )
    pending_ttl_seconds: int = Field(
        default=86_400, ge=1, description="Expiry of a pending trade created without expires_at."
    )
    request_ttl_seconds: int = Field(
        default=7 * 86_400, ge=1, description="Expiry of a payment request created without one."
    )
    sweep_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often each worker runs the background jobs."
    )
    seal_interval_seconds: float = Field(
        default=0.1,
        gt=0,
        description="How often each worker seals new audit records: a change becomes an event "
        "(the feed, webhooks) when it is sealed.",
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
    federation_max_hops: int = Field(
        default=FEDERATION_MAX_HOPS,
        ge=1,
        le=FEDERATION_MAX_HOPS,
        description="The most links a trade this network sends on may have crossed, with the"
        " next one (too_many_hops); at most the protocol's 8.",
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
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one webhook delivery may take, all told."
    )
    webhook_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often each delivery loop looks for webhook deliveries"
        " due (beyond being woken when events are sealed).",
    )
    webhook_delivery: str = Field(
        default="process",
        pattern="^(process|workers|off)$",
        description="Where webhooks are delivered from. process: one process of its own, which"
        " `serve` starts beside its HTTP workers (and again if it dies); workers: every HTTP"
        " worker; off: not from here (`mutualcredit deliver` runs elsewhere).",
    )
    webhook_priority: str = Field(
        default="idle",
        pattern="^(idle|low|normal)$",
        description="The delivery process's CPU priority. idle: it runs on what the machine"
        " leaves (Linux's SCHED_IDLE), so that trades go first where CPU is short and deliveries"
        " catch up after; low: nice 10; normal: as the HTTP workers.",
    )
    webhook_senders: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Webhook delivery loops in each process that delivers: a slow receiver"
        " holds up one.",
    )
    webhook_max_per_member: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Enabled webhook endpoints a member account may have (0: members may not"
        " register any).",
    )
    webhook_retry_scale: float = Field(
        default=1.0,
        gt=0,
        description="Multiplies the webhook retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,"
        " 10 h: about 27 hours); below 1 only for tests.",
    )
    webhook_disable_after_days: float = Field(
        default=5.0, gt=0, description="A webhook endpoint failing this long is disabled."
    )
    webhook_secret_grace_seconds: int = Field(
        default=86400,
        ge=0,
        description="After a secret rotation, how long the previous secret still signs too.",
    )
    webhook_max_response_bytes: int = Field(
        default=65536, ge=0, description="How much of a receiver's answer is read."
    )
    log_level: str = Field(
        default="info",
        pattern="^(debug|info|warning|error|critical)$",
        description="The least severe log level written.",
    )
    log_format: str = Field(
        default="auto",
        pattern="^(auto|json|text)$",
        description="json: one object per line; text: for a person; auto: text when stderr is "
        "a terminal, JSON otherwise.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        # uvicorn knows its levels by their lower-case names only.
        return value.lower() if isinstance(value, str) else value
