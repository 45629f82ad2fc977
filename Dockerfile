# syntax=docker/dockerfile:1
# Production image: a non-root user; applies the migrations, then runs uvicorn.
# It needs MUTUALCREDIT_DATABASE_URL (the embedded PostgreSQL is for a developer's machine).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install .

FROM python:3.11-slim-bookworm
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MUTUALCREDIT_HOST=0.0.0.0 \
    MUTUALCREDIT_PORT=8000 \
    MUTUALCREDIT_WORKERS=2
RUN groupadd --system --gid 10001 mutualcredit \
    && useradd --system --uid 10001 --gid mutualcredit --home-dir /nonexistent \
       --shell /usr/sbin/nologin mutualcredit
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
# `serve` applies the migrations first (Alembic serialises concurrent starts in one
# transaction), then execs uvicorn with MUTUALCREDIT_WORKERS workers. It refuses to start an
# embedded database inside the image: a container's disk is not where a ledger lives.
ENV MUTUALCREDIT_REQUIRE_DATABASE_URL=1
CMD ["mutualcredit", "serve", "--no-demo"]
