# semis-monitor: the daemon in a slim image, running as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY rules ./rules
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin monitor \
 && mkdir -p /data /config \
 && chown monitor:monitor /data

# State (the SQLite file) lives on this volume; mount config and rules read-only.
VOLUME ["/data"]
WORKDIR /data
USER monitor

# The health endpoint must listen beyond loopback inside the container for `docker run -p`;
# set [health] host = "0.0.0.0" in the mounted config if you publish it.
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["monitor", "health", "--config", "/config/config.toml"]

ENTRYPOINT ["monitor"]
CMD ["run", "--config", "/config/config.toml"]
