"""A single-node Apache Kafka (KRaft, combined broker + controller) run from Maven Central jars.

The jars of ``org.apache.kafka:kafka_2.13`` and its runtime dependencies are resolved once with
``mvn dependency:copy-dependencies`` into ``<cache_dir>/kafka-<version>/libs``; the log directory
is formatted with Kafka's storage tool once; the broker is ``java -cp 'libs/*' kafka.Kafka``.

With ``SASL_PLAINTEXT`` and a SCRAM mechanism in the Kafka settings the client listener requires
SCRAM logins (also between brokers); the SCRAM user is created when the log directory is
formatted, from a salted password computed here. Secrets go only into files readable by us
alone (``server.properties``; the storage tool's arguments via a Java ``@argfile``), never on a
command line that ``ps`` shows. The controller listener stays PLAINTEXT on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from stream_app.local.services.base import LocalService, Say
from stream_app.local.services.process import ManagedProcess, ServiceError, write_private_file
from stream_app.preflight import check_kafka
from stream_app.settings import KafkaSettings, LocalServicesSettings

SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
SCRAM_ITERATIONS = 8192
_SCRAM_USER = re.compile(r"[A-Za-z0-9._-]{1,128}")

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

    def check(self) -> None:
        check_kafka(self.kafka, timeout=2.0)

    def launch(self, say: Say) -> int:
        libs = fetch_kafka_jars(self.local, say)
        java = shutil.which("java")
        if java is None:
            raise ServiceError("Java 17+ ('java') is needed to run Kafka; install a JDK first")
        properties = self._write_config()
        classpath = f"{libs}/*"
        data = self.home / "data"
        if not (data / "meta.properties").exists():
            cluster_id = _cluster_id()
            storage_tool = ["-cp", classpath, "kafka.tools.StorageTool", "format"]
            storage_tool += ["-t", cluster_id, "-c", str(properties), *self._scram_user()]
            argfile = write_private_file(self.home / "format.args", _java_argfile(storage_tool))
            try:
                formatted = subprocess.run(
                    [java, f"@{argfile}"], capture_output=True, text=True, check=False
                )
            finally:
                argfile.unlink()
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
        listener = self.kafka.security_protocol
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{controller}",
            "listeners": f"{listener}://{self.address},CONTROLLER://{controller}",
            "advertised.listeners": f"{listener}://{self.address}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": f"{listener}:{listener},CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": listener,
            **self._listener_security(),
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
        lines = "".join(f"{k}={_property_value(v)}\n" for k, v in settings.items())
        properties = write_private_file(self.home / "server.properties", lines)
        (self.home / "log4j2.properties").write_text(_LOG4J)
        return properties

    def _scram_login(self) -> tuple[str, str, str] | None:
        """(mechanism, user, password) the local broker enforces, or None for PLAINTEXT."""
        kafka = self.kafka
        if kafka.security_protocol == "PLAINTEXT":
            return None
        if (
            kafka.security_protocol == "SASL_PLAINTEXT"
            and kafka.sasl_mechanism in SCRAM_HASHES
            and kafka.sasl_username is not None
            and _SCRAM_USER.fullmatch(kafka.sasl_username)
            and kafka.sasl_password is not None
        ):
            return kafka.sasl_mechanism, kafka.sasl_username, kafka.sasl_password.get_secret_value()
        raise ServiceError(
            "the local Kafka runs PLAINTEXT, or SASL_PLAINTEXT with SCRAM-SHA-256 or "
            "SCRAM-SHA-512, a username (letters, digits, '._-') and a password; the settings "
            f"ask for {kafka.security_protocol} with {kafka.sasl_mechanism or 'no mechanism'}"
        )

    def _listener_security(self) -> dict[str, str]:
        """Broker properties that make the client (and inter-broker) listener require SCRAM."""
        login = self._scram_login()
        if login is None:
            return {}
        mechanism, user, password = login
        module = "org.apache.kafka.common.security.scram.ScramLoginModule required"
        jaas = f"{module} username={_jaas_quoted(user)} password={_jaas_quoted(password)};"
        return {
            "sasl.enabled.mechanisms": mechanism,
            "sasl.mechanism.inter.broker.protocol": mechanism,
            f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config": jaas,
        }

    def _scram_user(self) -> list[str]:
        """The storage tool's ``--add-scram`` arguments: the user with a salted password."""
        login = self._scram_login()
        if login is None:
            return []
        mechanism, user, password = login
        salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac(
            SCRAM_HASHES[mechanism], password.encode(), salt, SCRAM_ITERATIONS
        )
        fields = [
            f"name={user}",
            f"iterations={SCRAM_ITERATIONS}",
            f'salt="{base64.b64encode(salt).decode()}"',
            f'saltedpassword="{base64.b64encode(salted).decode()}"',
        ]
        return ["--add-scram", f"{mechanism}=[{','.join(fields)}]"]


def _jaas_quoted(value: str) -> str:
    """A JAAS option value in double quotes (backslash escapes, as Kafka's parser reads them)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _property_value(value: str) -> str:
    """``value`` escaped for a Java properties file: backslashes, line breaks, and anything
    outside printable ASCII as UTF-16 ``\\uXXXX`` units."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "".join(c if " " <= c < "\x7f" else _utf16_escapes(c) for c in escaped)


def _utf16_escapes(char: str) -> str:
    units = char.encode("utf-16-be")
    return "".join(f"\\u{units[i : i + 2].hex()}" for i in range(0, len(units), 2))


def _java_argfile(arguments: list[str]) -> str:
    """A Java launcher ``@argfile``: one double-quoted, escaped argument per line."""
    return "".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for a in arguments)


def _cluster_id() -> str:
    """A random KRaft cluster id (base64url of a UUID) that does not start with '-': the storage
    tool would read such an id as an option (Kafka's own ``Uuid.randomUuid`` avoids it too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id
