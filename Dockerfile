# syntax=docker/dockerfile:1
# medscrm: the API, the web console, `medscrm worker` and the CLI in one image.
#   docker build -t medscrm .          (or `docker compose up`, see README: Deploy)
# Installs exactly the locked versions (uv.lock, `uv sync --frozen --no-dev`) into /opt/medscrm, then
# copies that environment into a clean slim image that runs as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the locked environment, with medscrm installed as a wheel (not editable) -------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/medscrm
WORKDIR /src
# the dependencies first: this layer is rebuilt only when the lock changes
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --extra devtools
# then medscrm itself; the wheel carries the console's templates and vendored static assets
# (src/medscrm/web/static/vendor, committed; scripts/build_web.sh refreshes them)
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable --extra devtools

# --- runtime -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 medscrm \
    && useradd --system --uid 10001 --gid medscrm --home-dir /var/lib/medscrm --shell /usr/sbin/nologin medscrm \
    && mkdir -p /var/lib/medscrm/spool /var/lib/medscrm/mail \
    && chown -R medscrm:medscrm /var/lib/medscrm
COPY --from=build /opt/medscrm /opt/medscrm
ENV PATH=/opt/medscrm/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MEDSCRM_ENV=production \
    MEDSCRM_SPOOL_DIR=/var/lib/medscrm/spool
# the working directory is medscrm's data directory (and where an embedded DuckDB file would live)
WORKDIR /var/lib/medscrm
USER 10001:10001
EXPOSE 8000
# 200 while serving; 503 when the database is unreachable or spooled events stop being stored
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4).status == 200 else 1)"]
CMD ["medscrm", "serve", "--host", "0.0.0.0", "--port", "8000"]
