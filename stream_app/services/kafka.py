"""A single-node Apache Kafka (KRaft, combined broker + controller) run from Maven Central jars.

The jars of ``org.apache.kafka:kafka_2.13`` and its runtime dependencies are resolved once with
``mvn dependency:copy-dependencies`` into ``<cache_dir>/kafka-<version>/libs``; the log directory
is formatted with Kafka's storage tool once; the broker is ``java -cp 'libs/*' kafka.Kafka``.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from stream_app.services.base import LocalService, Say
from stream_app.services.process import ManagedProcess, ServiceError
from stream_app.settings import KafkaSettings, LocalServicesSettings

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.driftstream</groupId>
  <artifactId>local-kafka</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>2.25.4</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def kafka_answers(kafka: KafkaSettings, timeout: float = 2.0) -> bool:
    """True when a metadata request to the bootstrap servers returns at least one broker."""
    quiet: dict[str, Any] = {"log_level": 0, "error_cb": lambda _error: None}
    admin = AdminClient({**kafka.client_config(), **quiet})
    try:
        return bool(admin.list_topics(timeout=timeout).brokers)
    except Exception:  # any client error means "not answering (yet)"
        return False


def fetch_kafka_jars(local: LocalServicesSettings, say: Say) -> Path:
    """Resolve the Kafka jars from Maven Central into the cache once; return the libs folder."""
    home = local.cache_dir / f"kafka-{local.kafka_version}"
    libs = home / "libs"
    done = home / ".complete"
    if done.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("Maven ('mvn') is needed to fetch Kafka's jars; install it first")
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM.format(version=local.kafka_version))
    say(f"fetching Apache Kafka {local.kafka_version} jars from Maven Central (first run only)")
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise ServiceError(f"mvn could not fetch Kafka {local.kafka_version}:\n{tail}")
    done.write_text(local.kafka_version)
    return libs


class LocalKafka(LocalService):
    """``up``/``down``/``status`` of the development broker described by the settings."""

    name = "kafka"

    def __init__(self, kafka: KafkaSettings, local: LocalServicesSettings) -> None:
        self.kafka = kafka
        self.local = local
        self.host, self.port = kafka.first_address()
        self.home = local.state_dir / "kafka"
        self.process = ManagedProcess("kafka", local.state_dir, marker=str(self.home))

    def answers(self) -> bool:
        return kafka_answers(self.kafka)

    def launch(self, say: Say) -> int:
        libs = fetch_kafka_jars(self.local, say)
        java = shutil.which("java")
        if java is None:
            raise ServiceError("Java 17+ ('java') is needed to run Kafka; install a JDK first")
        properties = self._write_config()
        classpath = f"{libs}/*"
        data = self.home / "data"
        if not (data / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            formatted = subprocess.run(
                [
                    java,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(properties),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if formatted.returncode != 0:
                raise ServiceError(
                    f"formatting {data} failed:\n{formatted.stdout}{formatted.stderr}"
                )
        say(f"starting Kafka {self.local.kafka_version} (KRaft) on {self.address}")
        return self.process.start(
            [
                java,
                f"-Xmx{self.local.kafka_heap}",
                "-Xms256m",
                "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(properties),
            ],
        )

    def _write_config(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        controller = f"{self.host}:{self.local.kafka_controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{controller}",
            "listeners": f"PLAINTEXT://{self.address},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.address}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        properties = self.home / "server.properties"
        properties.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        (self.home / "log4j2.properties").write_text(_LOG4J)
        return properties
