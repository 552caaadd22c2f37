# syntax=docker/dockerfile:1
# BrokerWatch: one image for every process (web, worker, beat, ingestors, aggregators); the command
# chooses. Multi-stage: the build stage compiles the order book's C core and the wheels; the runtime
# stage holds no compiler and runs as an unprivileged user. (Docker does not run on the development
# machines: this file is linted by hadolint in the test suite, not built there.)

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc=4:12.2.0-3 libc6-dev=2.36-9+deb12u14 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt
COPY . .
RUN /opt/venv/bin/python setup.py -q build_ext --inplace \
 && DJANGO_SETTINGS_MODULE=config.settings SECRET_KEY=collectstatic-only ADMIN_URL=collectstatic-only/ \
    USE_REDIS=0 REDIS_REQUIRED=0 \
    /opt/venv/bin/python manage.py collectstatic --noinput -v0

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings LOG_JSON=1
RUN groupadd --system --gid 10001 brokerwatch \
 && useradd --system --uid 10001 --gid brokerwatch --no-create-home --shell /usr/sbin/nologin brokerwatch
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /src /srv/brokerwatch
WORKDIR /srv/brokerwatch
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "config.web", "-b", "0.0.0.0", "-p", "8000", "config.asgi:application"]
