# The user-code image of deploy/helm-values.yaml: the mds_assets code location, served by
# `dagster api grpc` (the chart passes `--module-name mds_assets.definitions`), and the image
# every run Job (K8sRunLauncher) and step Job (MDS_EXECUTOR=k8s) starts from.
#
#   docker build -t registry.example.com/mds-assets:0.1.0 .
#
# Install steps: docs/operations.md (Kubernetes).
FROM python:3.11-slim

ARG EXTRAS=k8s,s3
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/mds-assets
COPY pyproject.toml README.md LICENSE workspace.yaml ./
COPY writer ./writer
COPY mds_assets ./mds_assets
RUN pip install --no-cache-dir ".[${EXTRAS}]" && mkdir -p "$DAGSTER_HOME"

EXPOSE 3030
CMD ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "3030", "--module-name", "mds_assets.definitions"]
