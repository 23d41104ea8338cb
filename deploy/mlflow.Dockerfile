# syntax=docker/dockerfile:1
# MLflow tracking server + model registry: runs and the registry in PostgreSQL, artifacts (adapters, datasets,
# evaluation reports) proxied by the server into /mlartifacts, so clients need only its URL.
# Same MLflow version as the client pinned in pyproject.toml.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install mlflow==3.17.2 psycopg2-binary==2.9.13
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mlflow \
    && mkdir -p /mlartifacts \
    && chown mlflow:mlflow /mlartifacts
USER mlflow
WORKDIR /home/mlflow
VOLUME ["/mlartifacts"]
EXPOSE 5000
# compose.yaml gives the command (it holds the database URI); this default serves a throw-away local store.
CMD ["mlflow", "server", "--artifacts-destination", "/mlartifacts", "--host", "0.0.0.0", "--port", "5000"]
