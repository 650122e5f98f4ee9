"""A Cassandra 5.0 node with password authentication and client TLS, like a production cluster.

A one-node cluster of its own (``rxcql-secure``) on ``127.0.0.8``, CQL port 19145 (TLS only),
storage port 17103, in ``$RXCQL_CACHE_DIR/secure-node-19145``, never the shared node on 9042.
Its cassandra.yaml adds to the test node's (:mod:`rxcql_dev.cassandra_server`):

* ``PasswordAuthenticator``, ``CassandraAuthorizer`` and ``CassandraRoleManager`` (in Cassandra
  5.0's ``class_name:`` form); the auth caches are off (``*_validity: 0ms``), so a ``GRANT`` or a
  dropped and re-created role applies to the next request;
* ``client_encryption_options``: enabled, not optional (no plain-text CQL on the port), the
  server's PKCS12 keystore, no client certificate required.

The TLS material is made at run time (nothing is checked in) in the node's ``tls/`` directory,
once, and reused: a self-signed CA (``ca.pem``, made with ``openssl``; its key is deleted after
signing), a server key and certificate signed by it (``server.pem``, SAN ``IP:127.0.0.8`` and
``DNS:localhost``), the server keystore (``keystore.p12``) and a truststore holding the CA
(``truststore.p12``), written by the JDK 17's ``keytool``, under a random password
(``store.password``, mode 0600).

The default superuser ``cassandra``/``cassandra`` is created by the server after start-up
(``-Dcassandra.superuser_setup_delay_ms=0`` here instead of its 10 s default): :func:`start`
returns only once a login as that superuser over TLS works.

Command line (through the ``scripts/cassandra-secure`` shim)::

    scripts/cassandra-secure start [--wait-timeout 180] [--keep-data]
    scripts/cassandra-secure status
    scripts/cassandra-secure stop

From Python::

    info = secure_node.start()          # idempotent; waits until a TLS login works
    cluster = Cluster(
        [secure_node.contact_point()],
        auth_provider=PlainTextAuthProvider(*secure_node.SUPERUSER),
        ssl_context=secure_node.ssl_context(),
    )
    secure_node.stop()

Needs the cassandra driver for :func:`start` and :func:`ssl_context` users (readiness is a
login), ``openssl`` on the path and a JDK 17 (:func:`rxcql_dev.jvm.find_java17`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import shutil
import ssl
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import cli
from .cassandra_cluster import single_node_spec
from .cassandra_server import (
    CassandraNodeError,
    NodeInfo,
    NodeSpec,
    node_pid,
    probe_cql,
    start_node,
    stop_node,
)
from .jvm import Echo, accepts_tcp, default_echo, find_java17, locked

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "HOST",
    "NAME",
    "PORT",
    "STORAGE_PORT",
    "SUPERUSER",
    "TlsFiles",
    "contact_point",
    "ensure_tls",
    "is_running",
    "main",
    "node_spec",
    "probe",
    "ssl_context",
    "start",
    "stop",
    "tls_dir",
]

NAME = "secure"
HOST = "127.0.0.8"
PORT = 19145
STORAGE_PORT = 17103
HEAP = "768m"
#: The superuser Cassandra creates when ``PasswordAuthenticator`` starts on an empty cluster.
SUPERUSER = ("cassandra", "cassandra")
DEFAULT_WAIT_TIMEOUT = 180.0
_CERT_DAYS = 3650
_JVM_OPTIONS = ("-Dcassandra.superuser_setup_delay_ms=0",)


@dataclass(frozen=True)
class TlsFiles:
    """The node's TLS material (see the module docstring).

    Attributes:
        ca: The CA certificate (PEM) that clients verify the server against.
        keystore: The server's key and certificate chain (PKCS12).
        truststore: The CA certificate (PKCS12).
        password_file: The stores' password.
    """

    ca: Path
    keystore: Path
    truststore: Path
    password_file: Path

    @property
    def password(self) -> str:
        return self.password_file.read_text(encoding="utf-8").strip()


def _base_spec() -> NodeSpec:
    return single_node_spec(NAME, HOST, PORT, STORAGE_PORT, heap=HEAP)


def tls_dir() -> Path:
    """Where the TLS material lives: ``tls/`` in the node's directory."""
    return _base_spec().node_dir / "tls"


def _tls_files(directory: Path) -> TlsFiles:
    return TlsFiles(
        ca=directory / "ca.pem",
        keystore=directory / "keystore.p12",
        truststore=directory / "truststore.p12",
        password_file=directory / "store.password",
    )


def contact_point() -> tuple[str, int]:
    """``(host, port)`` of the node's CQL (TLS) port."""
    return (HOST, PORT)


# --------------------------------------------------------------------------------------------
# TLS material


def _run(command: Sequence[str], cwd: Path) -> None:
    try:
        result = subprocess.run(
            list(command), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CassandraNodeError(f"{command[0]} failed: {error}") from error
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise CassandraNodeError(
            f"{Path(command[0]).name} {command[1]} failed (status {result.returncode}): {output}"
        )


def _make_tls(directory: Path, keytool: Path, openssl: str) -> None:
    """Write the CA, the server certificate and the stores into ``directory`` (empty)."""
    password = directory / "store.password"
    password.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
    password.chmod(0o600)
    (directory / "server.ext").write_text(
        f"subjectAltName = IP:{HOST}, DNS:localhost\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n",
        encoding="utf-8",
    )
    days = str(_CERT_DAYS)
    # The CA: self-signed, its key used once (below) and deleted.
    _run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", days,
            "-subj", "/O=rxcql/CN=rxcql test CA",
            "-addext", "basicConstraints = critical, CA:TRUE",
            "-addext", "keyUsage = critical, keyCertSign, cRLSign",
            "-keyout", "ca.key", "-out", "ca.pem",
        ],
        directory,
    )  # fmt: skip
    # The server's key and certificate, signed by the CA.
    _run(
        [
            openssl, "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-subj", f"/O=rxcql/CN={HOST}", "-keyout", "server.key", "-out", "server.csr",
        ],
        directory,
    )  # fmt: skip
    _run(
        [
            openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", str(secrets.randbits(63)), "-days", days, "-sha256",
            "-extfile", "server.ext", "-out", "server.pem",
        ],
        directory,
    )  # fmt: skip
    # Key and chain as PKCS12 (openssl), then written again by keytool: the keystore Cassandra
    # reads is one the JDK wrote itself. Passwords go through files, not command lines.
    _run(
        [
            openssl, "pkcs12", "-export", "-name", "server", "-in", "server.pem",
            "-inkey", "server.key", "-certfile", "ca.pem",
            "-passout", "file:store.password", "-out", "server-openssl.p12",
        ],
        directory,
    )  # fmt: skip
    _run(
        [
            str(keytool), "-importkeystore", "-noprompt",
            "-srckeystore", "server-openssl.p12", "-srcstoretype", "PKCS12",
            "-srcstorepass:file", "store.password",
            "-destkeystore", "keystore.p12", "-deststoretype", "PKCS12",
            "-deststorepass:file", "store.password",
        ],
        directory,
    )  # fmt: skip
    _run(
        [
            str(keytool), "-importcert", "-noprompt", "-alias", "rxcql-test-ca",
            "-file", "ca.pem", "-keystore", "truststore.p12", "-storetype", "PKCS12",
            "-storepass:file", "store.password",
        ],
        directory,
    )  # fmt: skip
    for transient in ("ca.key", "server.key", "server.csr", "server-openssl.p12", "server.ext"):
        (directory / transient).unlink(missing_ok=True)
    for stored in ("keystore.p12", "truststore.p12"):
        (directory / stored).chmod(0o600)


def ensure_tls(echo: Echo = default_echo) -> TlsFiles:
    """The node's TLS material, made on first use (see the module docstring) and then reused.

    Raises:
        CassandraNodeError: ``openssl`` or a JDK 17's ``keytool`` is missing, or one failed.
    """
    directory = tls_dir()
    files = _tls_files(directory)
    with locked(directory.parent / ".tls.lock"):
        if all(path.is_file() for path in dataclasses.astuple(files)):
            return files
        openssl = shutil.which("openssl")
        if openssl is None:
            raise CassandraNodeError("openssl is not on the path: it makes the node's test CA")
        keytool = find_java17(CassandraNodeError) / "bin" / "keytool"
        if not keytool.is_file():
            raise CassandraNodeError(f"no keytool next to the JDK 17's java ({keytool})")
        echo(f"secure node: making a test CA and server keystore in {directory}")
        building = directory.with_name(directory.name + ".new")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(mode=0o700, parents=True)
        try:
            _make_tls(building, keytool, openssl)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(building, directory)
    return files


def ssl_context() -> ssl.SSLContext:
    """A client TLS context that verifies the node's certificate against the test CA, host name
    included (the certificate names ``IP:127.0.0.8``): pass it as ``Cluster(ssl_context=...)``.

    Raises:
        CassandraNodeError: The TLS material has not been made yet (:func:`start` makes it).
    """
    ca = _tls_files(tls_dir()).ca
    if not ca.is_file():
        raise CassandraNodeError(f"no test CA at {ca}: start the secure node first")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# --------------------------------------------------------------------------------------------
# The node


def _extra_yaml(files: TlsFiles) -> str:
    return f"""# rxcql_dev.secure_node: password authentication, roles, client TLS only.
authenticator:
  class_name: org.apache.cassandra.auth.PasswordAuthenticator
authorizer:
  class_name: org.apache.cassandra.auth.CassandraAuthorizer
role_manager:
  class_name: org.apache.cassandra.auth.CassandraRoleManager
roles_validity: 0ms
permissions_validity: 0ms
credentials_validity: 0ms
client_encryption_options:
  enabled: true
  optional: false
  keystore: {files.keystore}
  keystore_password: "{files.password}"
  truststore: {files.truststore}
  truststore_password: "{files.password}"
  store_type: PKCS12
  require_client_auth: false
"""


def node_spec(files: TlsFiles | None = None) -> NodeSpec:
    """The node's spec: with ``files`` (from :func:`ensure_tls`), its full cassandra.yaml; without,
    enough to find, probe or stop it."""
    base = _base_spec()
    if files is None:
        return base
    return dataclasses.replace(base, extra_yaml=_extra_yaml(files), jvm_options=_JVM_OPTIONS)


def _driver_available() -> bool:
    try:
        import cassandra.cluster  # noqa: F401
    except ImportError:
        return False
    return True


def probe(timeout: float = 10.0) -> str | None:
    """The node's ``release_version`` once a superuser login over TLS works, else ``None``."""
    if not accepts_tcp(HOST, PORT, timeout=0.5):
        return None
    return probe_cql(HOST, PORT, timeout=timeout, auth=SUPERUSER, ssl_context=ssl_context()) or None


def is_running() -> bool:
    """Whether the node's JVM (per its pid file) is alive."""
    return node_pid(node_spec()) is not None


def start(
    echo: Echo = default_echo,
    *,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    keep_data: bool = False,
) -> NodeInfo:
    """Start the node and wait until the superuser can log in over TLS.

    Idempotent: a running one is waited for and reused (``NodeInfo.started`` is then ``False``).

    Raises:
        CassandraNodeError: No driver, openssl, JDK 17 or jars; the address is taken; or the
            node did not accept a TLS login in time (its JVM is then killed).
    """
    if not _driver_available():
        raise CassandraNodeError("the secure node's readiness is a login: install cassandra-driver")
    files = ensure_tls(echo)

    def ready(remaining: float) -> str | None:
        return probe(timeout=max(1.0, min(10.0, remaining)))

    return start_node(
        node_spec(files),
        wait_timeout=wait_timeout,
        keep_data=keep_data,
        in_use_hint=" (the secure node's own address: free it)",
        echo=echo,
        probe=ready,
    )


def stop() -> bool:
    """Stop the node (SIGTERM, SIGKILL after a minute). ``True`` if it was running."""
    return stop_node(node_spec())


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser, subs = cli.parser_with_commands(
        "cassandra-secure",
        "Run a local Cassandra 5.0 node with password authentication and client TLS "
        f"({HOST}:{PORT}).",
        (
            ("start", "start the node (idempotent) and wait until a superuser TLS login works"),
            ("stop", "stop the node"),
            ("status", "exit 0 if the node is running and a superuser TLS login works, else 1"),
        ),
    )
    start_command = subs["start"]
    cli.add_wait_timeout(start_command, DEFAULT_WAIT_TIMEOUT, "seconds to wait for a login")
    start_command.add_argument("--keep-data", action="store_true", help="do not wipe the data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return cli.run(_parser(), _command, argv)


def _command(args: argparse.Namespace) -> int:
    where = f"{HOST}:{PORT}"
    if args.command == "start":
        info = start(wait_timeout=args.wait_timeout, keep_data=args.keep_data)
        state = f"ready in {info.startup_seconds:.1f} s" if info.started else "already running"
        print(
            f"secure cassandra {info.version} {state} on {where} (pid {info.pid}): TLS only, "
            f"CA {_tls_files(tls_dir()).ca}, superuser {SUPERUSER[0]}/{SUPERUSER[1]}"
        )
        return 0
    if args.command == "stop":
        stopped = stop()
        print(f"secure cassandra on {where} stopped" if stopped else "secure cassandra not running")
        return 0
    pid = node_pid(node_spec())
    if pid is None:
        print(f"secure cassandra not running on {where}")
        return 1
    version = probe() if _driver_available() else None
    if not version:
        print(f"secure cassandra pid {pid} alive but no TLS login on {where} (starting?)")
        return 1
    print(f"secure cassandra {version} running on {where} (pid {pid}, dir {tls_dir().parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
