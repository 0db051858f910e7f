"""All of driftstream's configuration, in one place.

Every field can be set by an environment variable: ``DRIFTSTREAM_`` followed by the section and
the field, joined by ``__``, for example ``DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or
``DRIFTSTREAM_JOIN__TTL_SECONDS=600``. Secrets are ``SecretStr`` so they never print.

Importing this module loads no detection code (``tests/unit/test_layers.py``): the detector
settings take their types, defaults and checks from :mod:`detectors.config` (and the worker's
lateness default from :mod:`pipeline.detect`) when the settings are first read, not when they
are imported, so whatever only needs the settings' classes (the preflight checks, the topics,
the local services) does not load river.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SecretStr,
    field_validator,
)
from pydantic_core import CoreSchema, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.runtimes import DEFAULT_ENGINE, UnknownRuntimeError, runtime
from stream_app.runtimes import Engine as Engine  # the runtimes' name type, read from here too

if TYPE_CHECKING:
    from detectors.config import DetectorList
else:

    class _FromDetectorConfig:
        """A field type of :mod:`detectors.config`, looked up when the model's schema is built:
        the validation and its errors are the detection core's own. A model with such a field
        (and any model holding it) needs ``defer_build=True``, or the schema, and with it
        river, would be built at import."""

        def __init__(self, name: str) -> None:
            self.name = name

        def __get_pydantic_core_schema__(
            self, _source: Any, handler: GetCoreSchemaHandler
        ) -> CoreSchema:
            import detectors.config

            return handler.generate_schema(getattr(detectors.config, self.name))

    DetectorList = Annotated[tuple[Any, ...], _FromDetectorConfig("DetectorList")]
    """``detectors.config.DetectorList``; a tuple to pydantic-settings, which parses the JSON of
    a variable for a tuple field."""

CACHE_HOME = Path.home() / ".cache" / "driftstream"


class KafkaSettings(BaseModel):
    """How every client (producers, the Faust worker, the CLI) reaches Kafka.

    ``driftstream services up`` runs a local broker with this security: ``SASL_PLAINTEXT``
    with a SCRAM mechanism creates the SCRAM user ``sasl_username`` when it formats the broker.
    """

    model_config = ConfigDict(hide_input_in_errors=True)  # an error must not echo a secret

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    credential_check_seconds: float = Field(default=30.0, gt=0)
    """How often a running worker re-checks that Kafka still accepts its login (it stops when
    not, rather than retrying forever)."""

    def client_config(self) -> dict[str, Any]:
        """librdkafka (confluent-kafka) connection properties, security included."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        for key, path in (
            ("ssl.ca.location", self.ssl_cafile),
            ("ssl.certificate.location", self.ssl_certfile),
            ("ssl.key.location", self.ssl_keyfile),
        ):
            if path is not None:
                config[key] = str(path)
        return config

    def first_address(self) -> tuple[str, int]:
        """Host and port of the first bootstrap server (where local services listen)."""
        first = self.bootstrap_servers.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port)


class RedisSettings(BaseModel):
    """Where the live per-model state is written.

    With ``username`` and ``password`` the local Redis of ``driftstream services up`` has that
    ACL user, allowed only keys under ``key_prefix``, and no default user; with a ``password``
    alone the default user needs it.
    """

    model_config = ConfigDict(hide_input_in_errors=True)  # an error must not echo a secret

    url: str = "redis://127.0.0.1:6379/0"
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    key_prefix: str = "driftstream:"

    @field_validator("url")
    @classmethod
    def _no_credentials_in_url(cls, url: str) -> str:
        parsed = urlparse(url)
        if parsed.password is not None or parsed.username:
            raise ValueError(
                "put credentials in DRIFTSTREAM_REDIS__USERNAME and DRIFTSTREAM_REDIS__PASSWORD, "
                "not in the URL (addresses are shown in messages)"
            )
        return url

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url`` (credentials never in the URL)."""
        kwargs: dict[str, Any] = {}
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        if self.tls:
            kwargs["ssl"] = True
            if self.tls_ca_file is not None:
                kwargs["ssl_ca_certs"] = str(self.tls_ca_file)
        return kwargs


class TopicSettings(BaseModel):
    """Topic names are ``prefix + name``; ``partitions`` is the count of the topics the worker
    creates (topics that exist keep theirs: the inputs may have any)."""

    prefix: str = "driftstream."
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class JoinSettings(BaseModel):
    """How long an unmatched prediction or label waits for its other half (event time).

    ``max_pending`` caps the entries held per input partition; past it the oldest are evicted
    and counted.
    """

    ttl_seconds: float = Field(default=3600.0, gt=0)
    max_pending: int = Field(default=1_000_000, ge=1)
    max_future_seconds: float = Field(default=300.0, gt=0)
    """Events stamped further ahead of the worker's clock are dead-lettered: one would move
    the event-time watermark and expire everything pending."""
    repartition: bool = True
    """Move the inputs onto ``<app id>-{predictions,labels}-repartition`` by ``request_id``
    before the join (Kafka-native runtime), so the join holds whatever the producers'
    partitioner. False skips
    the hop when every producer keys by ``request_id`` with Kafka's default (murmur2)
    partitioner and both inputs have the same partition count; a record found elsewhere is
    counted in ``wrong_partition`` and logged. The Faust runtime always reads them as they are."""


class DetectorSettings(BaseModel):
    """Which detectors run on which signal, for every model or per model (JSON values in the
    environment), e.g. ``DRIFTSTREAM_DETECTORS__DATA_DETECTORS='[{"name": "kswin"}]'``,
    ``DRIFTSTREAM_DETECTORS__SIGNAL_DETECTORS='{"feature:zip*": []}'`` (signal name or pattern
    -> detectors; empty switches it off), or
    ``DRIFTSTREAM_DETECTORS__MODELS='{"fraud": {"alert_cooldown_events": 5000}}'`` (model id ->
    fields of ``detectors.config.BankConfig``).
    """

    model_config = ConfigDict(defer_build=True)  # DetectorList: detectors.config at first use

    concept_detectors: DetectorList = Field(default_factory=lambda: _default_detectors("concept"))
    data_detectors: DetectorList = Field(default_factory=lambda: _default_detectors("data"))
    alert_cooldown_events: int = Field(default=1000, ge=0)
    signal_detectors: dict[str, DetectorList] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    file: Path | None = None
    """A detector file (``driftstream calibrate --out``): detectors per model and signal, on
    top of the lists above; ``models`` fields still win over it."""

    @field_validator("file")
    @classmethod
    def _usable_file(cls, file: Path | None) -> Path | None:
        if file is not None:
            from detectors.config import DetectorFileError, read_detector_file

            try:
                read_detector_file(file)
            except DetectorFileError as exc:  # one line naming this setting and the file's field
                reason = {"reason": str(exc)}
                raise PydanticCustomError("detector_file", "{reason}", reason) from exc
        return file


def _default_detectors(kind: Literal["concept", "data"]) -> DetectorList:
    """``detectors.config.DEFAULT_CONCEPT_DETECTORS`` or ``DEFAULT_DATA_DETECTORS``."""
    from detectors.config import DEFAULT_CONCEPT_DETECTORS, DEFAULT_DATA_DETECTORS

    return DEFAULT_CONCEPT_DETECTORS if kind == "concept" else DEFAULT_DATA_DETECTORS


def _default_lateness() -> float:
    """``pipeline.detect.DEFAULT_LATENESS_SECONDS``."""
    from pipeline.detect import DEFAULT_LATENESS_SECONDS

    return DEFAULT_LATENESS_SECONDS


def _known_engine(name: str) -> Engine:
    """``name`` if it is a runtime of :data:`stream_app.runtimes.RUNTIMES`."""
    try:
        return runtime(name).name
    except UnknownRuntimeError as exc:  # one line naming the choices
        raise PydanticCustomError("unknown_engine", "{reason}", {"reason": str(exc)}) from None


class WorkerSettings(BaseModel):
    """The stream worker (``driftstream worker``)."""

    engine: Annotated[Engine, AfterValidator(_known_engine)] = DEFAULT_ENGINE
    """The runtime, a name in :data:`stream_app.runtimes.RUNTIMES` (``kafka``: confluent-kafka
    in batches, exactly-once with Kafka transactions, the default; ``faust``: faust-streaming
    agents, at-least-once made idempotent, for teams that run Faust)."""
    app_id: str | None = None  # consumer group (and Faust app id); default: "<topic prefix>worker"
    data_dir: Path = CACHE_HOME / "worker"
    session_timeout_seconds: float = Field(default=30.0, ge=6.0)
    """How long the group waits for a worker that stopped answering (killed, cut off) before
    its partitions move to another worker."""
    dedupe_window: int = Field(default=100_000, ge=1_000)
    """Observations per model remembered (8 bytes each) to skip one sent again after a crash:
    more than the join stage can re-send, i.e. than it handles between two offset commits."""
    lateness_seconds: float = Field(default_factory=_default_lateness, ge=0)
    """How far behind the latest of its kind (predictions, outcomes) a model's observation may
    be stamped and still reach the detectors in event-time order: the Kafka-native runtime and
    the replay hold each that long (event time, or wall time once the kind goes quiet), which
    is the latency it adds. One later than that is applied at once and counted in
    ``late_observations``; the Faust runtime holds nothing and only counts. Default:
    ``pipeline.detect.DEFAULT_LATENESS_SECONDS`` (2 s)."""
    wall_clock_silence: bool = True
    """Whether models that all stop are silent by the wall clock: once the broker says the
    stream is idle, each ``observations`` partition's event-time clock goes on with the wall
    clock (the Kafka-native runtime; ``stream_app.runtimes.kafka.clock_watch``). Off, they are
    seen only when event time goes on (another model's prediction)."""
    alerts_lookback: int = Field(default=1_000, ge=1)
    """Records per alerts partition read when a model's state is restored, so an alert raised
    again by re-read observations is not published twice."""
    redis_flush_seconds: float = Field(default=1.0, gt=0)
    commit_interval_seconds: float = Field(default=0.05, gt=0)
    """Kafka runtime: how often a transaction commits the batch's outputs, state and input
    offsets. Outputs are visible to ``read_committed`` readers only then, so it bounds the
    latency it adds (a joined outcome waits for it before the detection reads it); a batch that
    raised an alert commits at once. Under load (a poll that
    brought a full fetch, ``batch_size`` or fewer: a backlog) it stretches, up to
    ``max_commit_interval_seconds``, to five times the last commit's duration, so committing
    takes at most a fifth of the worker's time; at any load, to five times what the last commit
    took to write its state changes (a wide model's signals, each commit)."""
    max_commit_interval_seconds: float = Field(default=1.0, gt=0)
    """Kafka runtime: the longest the commit interval stretches to under load."""
    batch_size: int = Field(default=2_000, ge=1)
    """Kafka runtime: the most records taken from the consumer at once (fewer where many
    partitions share ``max_held_records``)."""
    max_held_records: int = Field(default=50_000, ge=10)
    """Kafka runtime: the most input records the route and join stages hold to merge their
    partitions by event time; past it they go regardless, out of order (a last resort: a
    partition holding more than its share is not fetched until it holds half of that; the
    shares, less a fetch each, add up to the bound: with many partitions, fetches are smaller
    than ``batch_size``, and the worker logs both at start)."""
    transaction_timeout_seconds: float = Field(default=10.0, ge=1.0)
    """Kafka runtime: how long the broker keeps a crashed worker's open transaction before it
    aborts it; until then ``read_committed`` readers of the partitions it wrote wait."""
    instance_id: str | None = Field(
        default=None, validation_alias=AliasChoices("instance_id", "transactional_id")
    )
    """A stable name per worker instance (a StatefulSet pod name, say; ``transactional_id``,
    its earlier name, is read too). A worker restarted under the same name takes its
    predecessor's place at once: the group hands it the same partitions without waiting out
    ``session_timeout_seconds`` (static membership, Kafka's ``group.instance.id``, both
    runtimes), and the Kafka runtime's transactional id, the same name, aborts the
    predecessor's open transaction instead of waiting ``transaction_timeout_seconds``. The
    price: a named worker stopped for good keeps its partitions until the session timeout (a
    static member does not leave the group when it stops). Default: none, a new random
    transactional id per start. Two running workers must never share one: the broker fences
    the older."""
    metrics_host: str = "127.0.0.1"  # Prometheus endpoint; "0.0.0.0" to be scraped from outside
    metrics_port: int = Field(default=9478, ge=0, le=65535)  # 0 switches the endpoint off
    metrics_max_models: int = Field(default=100, ge=1)  # models with labels of their own
    metrics_max_signals: int = Field(default=100, ge=1)  # per model: signals (and features)


class LocalServicesSettings(BaseModel):
    """The development Kafka and Redis that ``driftstream services up`` runs on loopback."""

    kafka_version: str = "4.3.1"
    kafka_heap: str = "1g"
    kafka_controller_port: int = 9093
    cache_dir: Path = CACHE_HOME
    state_dir: Path = CACHE_HOME / "services"
    ready_timeout_seconds: float = Field(default=90.0, gt=0)


class Settings(BaseSettings):
    """The root of the configuration tree."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTSTREAM_",
        env_nested_delimiter="__",
        extra="forbid",
        hide_input_in_errors=True,  # an error must not echo a secret
        defer_build=True,  # it holds DetectorSettings (see there)
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    join: JoinSettings = Field(default_factory=JoinSettings)
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    services: LocalServicesSettings = Field(default_factory=LocalServicesSettings)
