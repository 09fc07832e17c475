# northstar: the service on the committed sample, built at image build time.
# Stage 1 installs the package into a virtualenv; stage 2 copies it, builds the sample
# warehouse with the real dbt, and serves it as an unprivileged user.
FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY core ./core
COPY metrics ./metrics
COPY northstar ./northstar
COPY seeds ./seeds
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    NORTHSTAR_DATA_DIR=/app/data \
    NORTHSTAR_LANDING=/app/seeds/sample \
    NORTHSTAR_DBT_PROJECT=/app/dbt_project \
    NORTHSTAR_HOST=0.0.0.0 \
    NORTHSTAR_PORT=8000
RUN useradd --create-home --uid 10001 northstar
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
COPY --chown=northstar:northstar dbt_project ./dbt_project
COPY --chown=northstar:northstar seeds ./seeds
RUN mkdir -p /app/data && chown northstar:northstar /app/data
USER northstar
RUN northstar build
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"
CMD ["northstar", "serve"]
