# The PETS image: every flow, the CLI and the Dagster code location.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY config ./config
RUN pip install --no-cache-dir .
# Not root: Kubernetes runs every pod under PodSecurity "restricted" as this uid (deploy/render.py
# PETS_UID); /state (the recovery stores' volume) and /dagster (DAGSTER_HOME) are the user's.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /state pets && mkdir -p /state /dagster && chown pets:pets /state /dagster
ENV PETS_MODE=production PETS_CONFIG_DIR=/app/config PETS_STATE_DIR=/state
VOLUME /state
USER 10001
ENTRYPOINT ["pets"]
