# The PETS image: every flow, the CLI and the Dagster code location.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY config ./config
RUN pip install --no-cache-dir .
ENV PETS_MODE=production PETS_CONFIG_DIR=/app/config PETS_STATE_DIR=/state
VOLUME /state
ENTRYPOINT ["pets"]
