# syntax=docker/dockerfile:1
#
# MLflow tracking server image used by infra/k8s/base/mlflow. The upstream
# MLflow image does not include a PostgreSQL driver or boto3, both of which
# the server needs (Postgres backend store, S3 artifact proxy).
#
#   docker build -f infra/docker/mlflow-server.Dockerfile \
#     --build-arg MLFLOW_VERSION=3.17.2 -t <ecr>/<cluster>/mlflow-server:3.17.2 infra/docker
#
# Keep MLFLOW_VERSION on the same major/minor as the mlflow client pinned in
# constraints.txt.
FROM python:3.10-slim

ARG MLFLOW_VERSION=3.17.2

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m pip install --no-cache-dir \
        "mlflow==${MLFLOW_VERSION}" \
        "psycopg2-binary>=2.9,<3" \
        "boto3>=1.34,<2" \
    && useradd --uid 1000 --user-group --home-dir /tmp --no-create-home mlflow

USER 1000:1000
EXPOSE 5000

# The Deployment passes the full `mlflow server ...` command line.
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
