"""Builds the Faust application from driftstream's settings (broker, credentials, topics)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import faust

from stream_app.runtimes.faust.seek_fence import SeekFencedTransport, check_faust_version
from stream_app.settings import KafkaSettings, Settings


def broker_credentials(kafka: KafkaSettings) -> Any:
    """Faust's credentials object for the configured Kafka security, or None for PLAINTEXT."""
    context: ssl.SSLContext | None = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile is not None:
            context.load_cert_chain(
                str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
            )
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class HideSaslExchange(logging.Filter):
    """aiokafka logs every request and response at DEBUG, logins included, and a SASL PLAIN
    login carries the password in clear: those lines lose their payload."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if any(type(arg).__name__.startswith("Sasl") for arg in args):  # the request/response
            record.msg, record.args = "SASL exchange (payload not logged)", ()
        return True


HIDE_SASL_EXCHANGE = HideSaslExchange()  # one instance: adding it again is a no-op


def broker_url(kafka: KafkaSettings) -> str:
    """``kafka://host1:port;host2:port`` from the comma-separated bootstrap servers."""
    return ";".join(f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(","))


def create_app(settings: Settings, app_id: str, data_dir: Path, **options: Any) -> faust.App:
    """A Faust app on the configured broker; ``options`` override Faust settings.

    Its consumer hands over no record fetched before a seek
    (:mod:`stream_app.runtimes.faust.seek_fence`)."""
    check_faust_version()
    logging.getLogger("aiokafka.conn").addFilter(HIDE_SASL_EXCHANGE)
    app = faust.App(
        app_id,
        broker=broker_url(settings.kafka),
        broker_credentials=broker_credentials(settings.kafka),
        datadir=str(data_dir),
        store="memory://",
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.worker.session_timeout_seconds,
        broker_heartbeat_interval=settings.worker.session_timeout_seconds / 10,
        consumer_group_instance_id=settings.worker.instance_id,  # None: a dynamic member
        web_enabled=False,
        **options,
    )
    app.transport = SeekFencedTransport(app.conf.broker_consumer, app)
    return app
