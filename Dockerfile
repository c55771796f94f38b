# syntax=docker/dockerfile:1
# The four service images and the gateway's, one build target each (deploy/build-images.sh
# builds them all):
#   docker build --target employee-service -t erp/employee-service:0.1.0 .
# An image holds its own dependency group, installed from its hash-locked file under
# deploy/requirements/, the shared package and its own package, nothing else. It runs one
# uvicorn worker as an unprivileged user and writes nothing to its filesystem, so it runs
# with a read-only root filesystem (scale by replicas, not workers). The employee image
# also carries the migrations, run as their own step with another command:
#   python -m alembic -c services/employee/alembic.ini upgrade head
ARG PYTHON_IMAGE=python:3.12-slim
# Where pip may find wheels besides the index: an image holding them at its root. None
# by default; the CI build, which reaches no package index, passes its own wheelhouse
# with PIP_NO_INDEX=1 and PIP_FIND_LINKS=/wheels (deploy/ci/images.sh).
ARG WHEELHOUSE=no-wheelhouse
# The gateway: the console built by Node, served by nginx as an unprivileged user.
ARG NODE_IMAGE=node:22.21.1-alpine
ARG NGINX_IMAGE=nginxinc/nginx-unprivileged:1.28.0-alpine

FROM scratch AS no-wheelhouse

FROM ${WHEELHOUSE} AS wheelhouse

FROM ${PYTHON_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app

# One virtualenv per dependency group: wheels only, every file checked against its hash,
# nothing resolved at build time (the lock lists every package).
FROM python AS deps-employee
COPY deploy/requirements/employee.txt /tmp/requirements.txt
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
RUN --mount=type=bind,from=wheelhouse,target=/wheels \
    python -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: --no-deps -r /tmp/requirements.txt

FROM python AS deps-approval-request
COPY deploy/requirements/approval-request.txt /tmp/requirements.txt
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
RUN --mount=type=bind,from=wheelhouse,target=/wheels \
    python -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: --no-deps -r /tmp/requirements.txt

FROM python AS deps-approval-processing
COPY deploy/requirements/approval-processing.txt /tmp/requirements.txt
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
RUN --mount=type=bind,from=wheelhouse,target=/wheels \
    python -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: --no-deps -r /tmp/requirements.txt

FROM python AS deps-notification
COPY deploy/requirements/notification.txt /tmp/requirements.txt
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
RUN --mount=type=bind,from=wheelhouse,target=/wheels \
    python -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: --no-deps -r /tmp/requirements.txt

# What every service image shares: the user, the entry point, the common package.
FROM python AS runtime
RUN groupadd --system --gid 10001 erp \
    && useradd --system --uid 10001 --gid erp --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin erp
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/erp-entrypoint
COPY services/__init__.py services/
COPY services/common/ services/common/
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["erp-entrypoint"]

FROM runtime AS employee-service
COPY --from=deps-employee /opt/venv /opt/venv
COPY services/employee/ services/employee/
RUN python -m compileall -q services
USER 10001:10001
CMD ["uvicorn", "--factory", "services.employee.app:create_app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--timeout-graceful-shutdown", "20"]

FROM runtime AS approval-request-service
COPY --from=deps-approval-request /opt/venv /opt/venv
COPY services/approval_request/ services/approval_request/
RUN python -m compileall -q services
USER 10001:10001
CMD ["uvicorn", "--factory", "services.approval_request.app:create_app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--timeout-graceful-shutdown", "20"]

FROM runtime AS approval-processing-service
COPY --from=deps-approval-processing /opt/venv /opt/venv
COPY services/approval_processing/ services/approval_processing/
RUN python -m compileall -q services
USER 10001:10001
CMD ["uvicorn", "--factory", "services.approval_processing.app:create_app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--timeout-graceful-shutdown", "20"]

FROM runtime AS notification-service
COPY --from=deps-notification /opt/venv /opt/venv
COPY services/notification/ services/notification/
RUN python -m compileall -q services
USER 10001:10001
CMD ["uvicorn", "--factory", "services.notification.app:create_app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--timeout-graceful-shutdown", "20", "--ws", "wsproto"]

# The web console's static files (console/dist): npm ci from the lock file, then the build.
FROM ${NODE_IMAGE} AS console
WORKDIR /console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console/index.html console/tsconfig.json console/vite.config.ts ./
COPY console/scripts/ scripts/
COPY console/src/ src/
RUN npm run build

# The public entry: nginx with the console at / on its console port. Its configuration
# (deploy/gateway/nginx.conf) and /config.json are mounted by the deployment (a Swarm
# config, a ConfigMap), so one image serves every deployment.
# nginx itself is the entry point: the base image's script edits files under /etc/nginx,
# which is read-only here.
FROM ${NGINX_IMAGE} AS gateway
COPY --from=console /console/dist/ /usr/share/nginx/html/
USER 101:101
EXPOSE 8001 8002 8003 8004 8080
ENTRYPOINT ["nginx", "-g", "daemon off;"]
CMD []
