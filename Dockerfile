# One image for every service; the command picks the room (factory ingest | kpi | api | edge | simulator).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY edge edge
COPY ingest ingest
COPY kpi kpi
COPY api api
COPY simulators simulators
COPY factory factory
COPY config config
RUN pip install . && useradd --system --uid 10001 --home /var/lib/factory factory \
    && mkdir -p /var/lib/factory && chown factory /var/lib/factory
USER factory
ENV FACTORY_CONFIG=/app/config/platform.yaml FACTORY_HEARTBEAT_FILE=/tmp/factory.alive
# The image alone: the service's health file is fresh and no link it reports is down. docker-compose.yml
# names the service (--service), so a link it must report cannot be missing either (factory/health.py).
HEALTHCHECK --interval=15s --timeout=5s --retries=4 CMD ["factory", "healthcheck"]
ENTRYPOINT ["factory"]
