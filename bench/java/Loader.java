// The Java driver's bulk INSERT loader: the ceiling contender of `python -m bench --only bulk`.
//
// A single source file for Java 17's source launcher, no build tool:
//
//   java -cp '<java-driver-4.19.0 lib>/*' bench/java/Loader.java --host=127.0.0.1 --port=9042 \
//       --keyspace=rxcql_bench --table=kv_bulk --rows=200000 --in-flight=256 --batch=0
//
// It prepares `INSERT INTO <table> (k, v) VALUES (?, ?)` and writes rows k = 0 .. rows-1 with
// v = "value-" + k (bench/node.py's value(i)), either one request per row (--batch=0 or 1) or in
// UNLOGGED batches of --batch consecutive rows, with --in-flight requests in flight (a semaphore
// and the async futures' callbacks). A warm-up pass of --warmup rows (keys rows .. rows+warmup-1,
// the same kind of rows after the timed ones) runs first, untimed, so that the timed pass
// measures the JIT-compiled driver on an open connection. Last line
// on stdout, one JSON object: rows, wall seconds and the JVM's own CPU seconds of the timed pass,
// the warm-up's rows and wall seconds, and the number of failed requests. Exit status 1 when any
// request failed.

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.BatchStatement;
import com.datastax.oss.driver.api.core.cql.BatchStatementBuilder;
import com.datastax.oss.driver.api.core.cql.DefaultBatchType;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Statement;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

public final class Loader {
    private final CqlSession session;
    private final PreparedStatement insert;
    private final int inFlight;
    private final int batch;
    private final AtomicInteger errors = new AtomicInteger();
    private final AtomicReference<Throwable> firstError = new AtomicReference<>();

    private Loader(CqlSession session, PreparedStatement insert, int inFlight, int batch) {
        this.session = session;
        this.insert = insert;
        this.inFlight = inFlight;
        this.batch = batch;
    }

    /** Writes keys first .. first+count-1 and waits until every request has completed. */
    private void pass(long first, long count) throws InterruptedException {
        Semaphore slots = new Semaphore(inFlight);
        long step = batch > 1 ? batch : 1;
        for (long start = 0; start < count; start += step) {
            long end = Math.min(start + step, count);
            Statement<?> statement;
            if (batch > 1) {
                BatchStatementBuilder builder = BatchStatement.builder(DefaultBatchType.UNLOGGED);
                for (long i = start; i < end; i++) {
                    builder.addStatement(bind(first + i));
                }
                statement = builder.build();
            } else {
                statement = bind(first + start);
            }
            slots.acquire();
            session.executeAsync(statement).whenComplete((result, error) -> {
                if (error != null && errors.getAndIncrement() == 0) {
                    firstError.set(error);
                }
                slots.release();
            });
        }
        slots.acquire(inFlight);
    }

    private com.datastax.oss.driver.api.core.cql.BoundStatement bind(long k) {
        return insert.bind(k, "value-" + k);
    }

    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean)
                ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static Map<String, String> options(String[] args) {
        Map<String, String> out = new HashMap<>();
        out.put("host", "127.0.0.1");
        out.put("port", "9042");
        out.put("datacenter", "datacenter1");
        out.put("keyspace", "rxcql_bench");
        out.put("table", "kv_bulk");
        out.put("rows", "200000");
        out.put("in-flight", "256");
        out.put("batch", "0");
        out.put("warmup", "20000");
        for (String arg : args) {
            if (!arg.startsWith("--") || !arg.contains("=")) {
                throw new IllegalArgumentException("arguments are --name=value, got " + arg);
            }
            String name = arg.substring(2, arg.indexOf('='));
            if (!out.containsKey(name)) {
                throw new IllegalArgumentException("unknown option --" + name);
            }
            out.put(name, arg.substring(arg.indexOf('=') + 1));
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> o = options(args);
        long rows = Long.parseLong(o.get("rows"));
        long warmup = Long.parseLong(o.get("warmup"));
        int inFlight = Integer.parseInt(o.get("in-flight"));
        int batch = Integer.parseInt(o.get("batch"));
        DriverConfigLoader config = DriverConfigLoader.programmaticBuilder()
                .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(60))
                .withDuration(DefaultDriverOption.CONNECTION_INIT_QUERY_TIMEOUT,
                        Duration.ofSeconds(30))
                // Netty waits 2 s for quiet by default when the session closes: not needed here.
                .withInt(DefaultDriverOption.NETTY_IO_SHUTDOWN_QUIET_PERIOD, 0)
                .withInt(DefaultDriverOption.NETTY_ADMIN_SHUTDOWN_QUIET_PERIOD, 0)
                .build();
        try (CqlSession session = CqlSession.builder()
                .addContactPoint(new InetSocketAddress(o.get("host"),
                        Integer.parseInt(o.get("port"))))
                .withLocalDatacenter(o.get("datacenter"))
                .withKeyspace(o.get("keyspace"))
                .withConfigLoader(config)
                .build()) {
            PreparedStatement insert = session.prepare(
                    "INSERT INTO " + o.get("table") + " (k, v) VALUES (?, ?)");
            Loader loader = new Loader(session, insert, inFlight, batch);

            long warm0 = System.nanoTime();
            loader.pass(rows, warmup);
            double warmupWall = (System.nanoTime() - warm0) / 1e9;
            int warmupErrors = loader.errors.getAndSet(0);

            long cpu0 = cpuNanos();
            long wall0 = System.nanoTime();
            loader.pass(0, rows);
            double wall = (System.nanoTime() - wall0) / 1e9;
            double cpu = (cpuNanos() - cpu0) / 1e9;

            int errors = loader.errors.get();
            Throwable first = loader.firstError.get();
            System.out.printf(
                    "{\"rows\": %d, \"wall\": %.6f, \"cpu\": %.6f, \"warmup_rows\": %d, "
                            + "\"warmup_wall\": %.6f, \"warmup_errors\": %d, \"errors\": %d}%n",
                    rows, wall, cpu, warmup, warmupWall, warmupErrors, errors);
            if (first != null) {
                System.err.println("first failed request: " + first);
            }
            if (errors > 0 || warmupErrors > 0) {
                System.exit(1);
            }
        }
    }
}
