"""Operations endpoints: ``GET /healthz`` and ``GET /metrics`` (Prometheus text format).

Served by a small aiohttp server when ``[monitoring] port`` is set (``sopbot run``
starts it beside the bot). What the database knows is read from the database at each
request, so every process of a deployment answers the same totals:

* ``/healthz``: 200 when the database answers and the oldest unprocessed update and the
  oldest queued message are younger than ``[monitoring] max_lag_seconds``; else 503. The
  body is one JSON object (``database``, ``inbox_pending``, ``inbox_lag_seconds``,
  ``outbox_pending``, ``outbox_lag_seconds``, ``problems``).
* ``/metrics``: updates handled (inbox rows processed, with or without an error),
  the handler latency histogram of this process, the outbox queue length and the age of
  its oldest message, messages given up, Telegram 429 answers seen by this process's
  sender, reminders sent and documents built (rows in the database).
"""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text

from models import Document, Inbox, Outbox, Reminder
from models.enums import OutboxStatus

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
HANDLER_SECONDS = Histogram(
    "sopbot_handler_seconds", "Time to process one update (handlers and commit), seconds",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY)
TELEGRAM_429 = Counter(
    "sopbot_telegram_429", "Bot API answers 429 (Too Many Requests) seen by this process",
    registry=REGISTRY)


def observe_update(seconds: float) -> None:
    """The intake calls this after each update's transaction (committed or marked)."""
    HANDLER_SECONDS.observe(seconds)


def observe_429() -> None:
    """The outbox sender calls this for every 429 answer."""
    TELEGRAM_429.inc()


def _age(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)
    return max((now - oldest).total_seconds(), 0.0)


async def snapshot(sessionmaker) -> dict:
    """What the database says now (raises when it does not answer)."""
    now = datetime.now(timezone.utc)
    async with sessionmaker() as s:
        await s.execute(text("SELECT 1"))
        inbox_pending, inbox_oldest = (await s.execute(
            select(func.count(), func.min(Inbox.received_at))
            .where(Inbox.processed_at.is_(None)))).one()
        handled_ok, handled_error = (await s.execute(select(
            func.count().filter(Inbox.error == ""),
            func.count().filter(Inbox.error != ""))
            .where(Inbox.processed_at.is_not(None)))).one()
        outbox_pending, outbox_oldest = (await s.execute(
            select(func.count(), func.min(Outbox.created_at))
            .where(Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).one()
        outbox_failed = (await s.execute(select(func.count()).select_from(Outbox)
                                         .where(Outbox.status == OutboxStatus.FAILED))).scalar_one()
        reminders = (await s.execute(select(func.count()).select_from(Reminder))).scalar_one()
        documents = (await s.execute(select(func.count()).select_from(Document))).scalar_one()
    return {
        "inbox_pending": inbox_pending, "inbox_lag_seconds": round(_age(inbox_oldest, now), 1),
        "handled_ok": handled_ok, "handled_error": handled_error,
        "outbox_pending": outbox_pending,
        "outbox_lag_seconds": round(_age(outbox_oldest, now), 1),
        "outbox_failed": outbox_failed, "reminders": reminders, "documents": documents,
    }


class _DatabaseCollector:
    """Yields the last snapshot taken for the request being answered."""

    def __init__(self) -> None:
        self.data: dict | None = None

    def collect(self):
        d = self.data
        if d is None:
            return
        handled = CounterMetricFamily("sopbot_updates_handled",
                                      "Updates processed from the inbox", labels=["outcome"])
        handled.add_metric(["ok"], d["handled_ok"])
        handled.add_metric(["error"], d["handled_error"])
        yield handled
        yield GaugeMetricFamily("sopbot_inbox_pending", "Updates stored, not yet processed",
                                value=d["inbox_pending"])
        yield GaugeMetricFamily("sopbot_inbox_lag_seconds",
                                "Age of the oldest unprocessed update", value=d["inbox_lag_seconds"])
        yield GaugeMetricFamily("sopbot_outbox_pending", "Messages queued, not yet sent",
                                value=d["outbox_pending"])
        yield GaugeMetricFamily("sopbot_outbox_lag_seconds",
                                "Age of the oldest queued message", value=d["outbox_lag_seconds"])
        yield CounterMetricFamily("sopbot_outbox_failed", "Messages given up",
                                  value=d["outbox_failed"])
        yield CounterMetricFamily("sopbot_reminders_sent", "Reminders and escalations sent",
                                  value=d["reminders"])
        yield CounterMetricFamily("sopbot_documents_built",
                                  "Document versions compiled (workbook, PDF and chart)",
                                  value=d["documents"])


class MonitoringServer:
    """``/healthz`` and ``/metrics`` on ``listen:port`` (port 0 picks a free one)."""

    def __init__(self, sessionmaker, *, listen: str = "127.0.0.1", port: int = 0,
                 max_lag_seconds: float = 300.0, timeout: float = 5.0) -> None:
        self.sm = sessionmaker
        self.listen, self.port = listen, port
        self.max_lag = max_lag_seconds
        self.timeout = timeout
        self._collector = _DatabaseCollector()
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None

    async def healthz(self, _request: web.Request) -> web.Response:
        body: dict = {"database": "ok", "problems": []}
        try:
            async with asyncio.timeout(self.timeout):
                body.update(await snapshot(self.sm))
        except Exception as exc:  # the database does not answer
            log.warning("healthz: database check failed: %s", type(exc).__name__)
            body["database"] = "error"
            body["problems"].append(f"basis data tidak menjawab ({type(exc).__name__})")
        else:
            if body["inbox_lag_seconds"] > self.max_lag:
                body["problems"].append(
                    f"update tertua belum diproses {body['inbox_lag_seconds']:.0f} detik")
            if body["outbox_lag_seconds"] > self.max_lag:
                body["problems"].append(
                    f"pesan tertua belum terkirim {body['outbox_lag_seconds']:.0f} detik")
        for key in ("handled_ok", "handled_error", "outbox_failed", "reminders", "documents"):
            body.pop(key, None)
        status = 200 if not body["problems"] else 503
        body["status"] = "ok" if status == 200 else "bermasalah"
        return web.Response(status=status, text=json.dumps(body, ensure_ascii=False),
                            content_type="application/json")

    async def metrics(self, _request: web.Request) -> web.Response:
        async with self._lock:  # one snapshot per answer
            try:
                async with asyncio.timeout(self.timeout):
                    self._collector.data = await snapshot(self.sm)
            except Exception as exc:
                log.warning("metrics: database read failed: %s", type(exc).__name__)
                self._collector.data = None
            registry = CollectorRegistry(auto_describe=False)
            registry.register(self._collector)
            payload = generate_latest(REGISTRY) + generate_latest(registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.listen, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        self._runner = runner
        log.info("monitoring on http://%s:%d/healthz and /metrics", self.listen, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
