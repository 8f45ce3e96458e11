# The aiusage image: every service (`aiusage consume`, `aiusage aggregate run`, ...) in
# server mode. Build from the repository root: docker build -t aiusage:local .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY aiusage ./aiusage
COPY consumer ./consumer
COPY aggregator ./aggregator
COPY query ./query
RUN pip install . && useradd --uid 10001 --create-home aiusage
USER aiusage
WORKDIR /home/aiusage
CMD ["aiusage", "--help"]
