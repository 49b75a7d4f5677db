# semis-monitor: the daemon in a slim image, running as a non-root user.

# Build stage: a C compiler turns the engine's hot loops (the matcher, the stance kernel)
# into extension modules (setup.py); the runtime image gets only the wheel.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
# monitor/defaults/rules links to ../../rules: the bundled pack is built from it.
COPY rules ./rules
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl \
 && rm -rf /wheels \
 && python -c "from monitor.app.daemon import matcher_build as b; assert b() == 'compiled', b()" \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin monitor \
 && mkdir -p /data /config \
 && chown monitor:monitor /data

# A working default: the sample config with its state on the /data volume, and the bundled
# rules beside it. Mount your own /config (config.toml + rules/) over it; `rules.dir` is
# resolved relative to the config file.
COPY rules /config/rules
COPY config.toml /config/config.toml
RUN sed -i 's#^url = "sqlite:///data/monitor.db"#url = "sqlite:////data/monitor.db"#' /config/config.toml

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
