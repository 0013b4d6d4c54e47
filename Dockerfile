# The bot as a container image: `docker build -t sopbot .`
# Runs `sopbot run` as an unprivileged user; config, database (SQLite) and stored files
# live in /srv/sopbot (mount a volume there). See docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/sopbot
COPY pyproject.toml README.md config.example.toml ./
COPY bot ./bot
COPY handlers ./handlers
COPY models ./models
COPY reports ./reports
RUN pip install . && useradd --system --home-dir /srv/sopbot --create-home sopbot

USER sopbot
WORKDIR /srv/sopbot
EXPOSE 8443 9100
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=8).status == 200 else 1)"
ENTRYPOINT ["sopbot", "--config", "/srv/sopbot/config.toml"]
CMD ["run"]
