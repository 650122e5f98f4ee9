"""rxcql's own tooling: the local Cassandra node and cluster, and Simulacron, for tests and CI.

Not part of the rxcql distribution: an editable install of the checkout (``pip install -e .``,
as ``scripts/ensure-venv`` runs it) puts ``tools/`` on the path, and the ``scripts/`` shell entry
points run these modules with ``python -m``.

Modules, one idea each:

* :mod:`rxcql_dev.jvm`: the one JVM launcher (Java 17, cache directory, locks, pid files,
  liveness, start and wait, terminate) that every server below runs through.
* :mod:`rxcql_dev.maven`: the one Maven fetcher (jars into the cache, with a completion marker).
* :mod:`rxcql_dev.cassandra_server`: a Cassandra 5.0 node from a :class:`NodeSpec` (jars,
  cassandra.yaml, JVM flags, start, stop, pause).
* :mod:`rxcql_dev.cassandra_node`: the single shared node on 127.0.0.1:9042 (``scripts/cassandra``).
* :mod:`rxcql_dev.cassandra_cluster`: the three-node cluster (``scripts/cassandra-cluster``).
* :mod:`rxcql_dev.secure_node`: a node with password authentication and client TLS, its test
  CA and keystore made at run time (``scripts/cassandra-secure``).
* :mod:`rxcql_dev.simulacron_node`: the Simulacron process (``scripts/simulacron``).
* :mod:`rxcql_dev.simulacron`: Simulacron's admin API client and its result builder.

Only the standard library is needed; the cassandra driver, when importable, makes readiness mean
that CQL answers.
"""
