package dev.walpurge.bench;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.Header;
import io.debezium.engine.format.Json;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Debezium's embedded engine (PostgreSQL connector, JSON converter) feeding a KafkaProducer, the way
 * Debezium Server's Kafka sink does: each batch is sent, the batch waits for every acknowledgement,
 * then its records are marked processed and the batch finished (so offsets never pass an unacknowledged
 * record). Everything goes to one topic, partitioned by the record key like the default partitioner.
 *
 * Arguments are key=value pairs: host, port, user, password, dbname, slot, publication, table
 * (schema.table), topic, brokers, offsets (file), profile (tuned | defaults). Prints its settings, then
 * "engine started"; stops when stdin closes or on SIGTERM/SIGINT, printing "stopped" and the count sent.
 */
public final class DebeziumKafkaBench {
  private DebeziumKafkaBench() {}

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = parseArgs(argv);
    boolean tuned = switch (require(args, "profile")) {
      case "tuned" -> true;
      case "defaults" -> false;
      default -> throw new IllegalArgumentException("profile must be tuned or defaults");
    };

    Properties engine = engineProperties(args, tuned);
    Properties producerProps = producerProperties(args, tuned);
    printSettings(tuned, engine, producerProps);

    String topic = require(args, "topic");
    KafkaProducer<String, String> producer =
        new KafkaProducer<>(producerProps, new StringSerializer(), new StringSerializer());
    AtomicReference<Throwable> failure = new AtomicReference<>();
    long[] sent = {0};

    DebeziumEngine<ChangeEvent<String, String>> debezium = DebeziumEngine.create(Json.class, Json.class, Json.class)
        .using(engine)
        .notifying((List<ChangeEvent<String, String>> records,
            DebeziumEngine.RecordCommitter<ChangeEvent<String, String>> committer) -> {
          CountDownLatch acked = new CountDownLatch(records.size());
          for (ChangeEvent<String, String> record : records) {
            ProducerRecord<String, String> message = new ProducerRecord<>(
                topic, null, null, record.key(), record.value(), kafkaHeaders(record));
            producer.send(message, (metadata, error) -> {
              if (error != null) failure.compareAndSet(null, error);
              acked.countDown();
            });
          }
          acked.await();
          Throwable error = failure.get();
          if (error != null) throw new IllegalStateException("Kafka refused a record", error);
          for (ChangeEvent<String, String> record : records) committer.markProcessed(record);
          committer.markBatchFinished();
          sent[0] += records.size();
        })
        .using((success, message, error) -> {
          if (!success) {
            System.err.println("engine stopped with an error: " + message);
            if (error != null) error.printStackTrace();
            Runtime.getRuntime().halt(2);
          }
        })
        .build();

    ExecutorService runner = Executors.newSingleThreadExecutor();
    CountDownLatch stopped = new CountDownLatch(1);
    Runnable stop = () -> {
      try {
        debezium.close();
        runner.shutdown();
        runner.awaitTermination(30, TimeUnit.SECONDS);
        producer.close();
      } catch (IOException | InterruptedException e) {
        e.printStackTrace();
      }
      System.out.println("stopped after sending " + sent[0] + " records");
      System.out.flush();
      stopped.countDown();
    };
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      if (stopped.getCount() > 0) stop.run();
    }));
    runner.execute(debezium);
    System.out.println("running: engine started");
    System.out.flush();

    // The parent closes stdin to stop us (a signal works too, through the shutdown hook).
    InputStream in = System.in;
    while (in.read() != -1) {
      // Input is ignored: only its end matters.
    }
    stop.run();
    System.exit(0);
  }

  /** The connector and engine settings; tuned adds what the comparison tuned, as Debezium's docs advise. */
  static Properties engineProperties(Map<String, String> args, boolean tuned) {
    Properties p = new Properties();
    p.setProperty("name", "walpurge-bench-debezium");
    p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
    p.setProperty("offset.storage", "org.apache.kafka.connect.storage.FileOffsetBackingStore");
    p.setProperty("offset.storage.file.filename", require(args, "offsets"));
    p.setProperty("database.hostname", require(args, "host"));
    p.setProperty("database.port", require(args, "port"));
    p.setProperty("database.user", require(args, "user"));
    p.setProperty("database.password", args.getOrDefault("password", ""));
    p.setProperty("database.dbname", require(args, "dbname"));
    p.setProperty("topic.prefix", "bench");
    p.setProperty("plugin.name", "pgoutput");
    p.setProperty("slot.name", require(args, "slot"));
    p.setProperty("publication.name", require(args, "publication"));
    // The benchmark creates the slot and publication before writing the backlog.
    p.setProperty("publication.autocreate.mode", "disabled");
    p.setProperty("table.include.list", require(args, "table"));
    // No snapshot: stream the backlog waiting in the slot, as walpurge does.
    p.setProperty("snapshot.mode", "no_data");
    // Plain JSON without an embedded schema, like walpurge's messages.
    p.setProperty("converter.schemas.enable", "false");
    if (tuned) {
      p.setProperty("max.batch.size", "8192");
      p.setProperty("max.queue.size", "32768");
      p.setProperty("poll.interval.ms", "50");
      p.setProperty("extended.headers.enabled", "false");
      // Latency statistics (on by default) update quantile sketches for every event: work spent
      // measuring, not capturing. Off, events still pass Debezium's bounded measurement queue, which
      // overflows at these rates and logs a warning now and then (3.6.1 has no switch for that).
      p.setProperty("statistics.metrics.enabled", "false");
    }
    return p;
  }

  static Properties producerProperties(Map<String, String> args, boolean tuned) {
    Properties p = new Properties();
    p.setProperty(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, require(args, "brokers"));
    p.setProperty(ProducerConfig.CLIENT_ID_CONFIG, "walpurge-bench-debezium");
    if (tuned) {
      p.setProperty(ProducerConfig.ACKS_CONFIG, "all");
      p.setProperty(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
      p.setProperty(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5");
      p.setProperty(ProducerConfig.LINGER_MS_CONFIG, "5");
      p.setProperty(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
    }
    return p;
  }

  static void printSettings(boolean tuned, Properties engine, Properties producer) {
    System.out.println("debezium " + DebeziumEngine.class.getPackage().getImplementationVersion()
        + " profile=" + (tuned ? "tuned" : "defaults") + " java=" + System.getProperty("java.version")
        + " jvm=" + String.join(" ", java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()));
    TreeMap<Object, Object> sortedEngine = new TreeMap<>(engine);
    sortedEngine.computeIfPresent("database.password", (k, v) -> v.toString().isEmpty() ? "" : "***");
    sortedEngine.forEach((k, v) -> System.out.println("engine " + k + "=" + v));
    new TreeMap<>(producer).forEach((k, v) -> System.out.println("producer " + k + "=" + v));
    System.out.flush();
  }

  private static List<org.apache.kafka.common.header.Header> kafkaHeaders(ChangeEvent<String, String> record) {
    List<Header<String>> headers = record.headers();
    List<org.apache.kafka.common.header.Header> out = new ArrayList<>(headers.size());
    for (Header<String> h : headers) {
      String value = h.getValue();
      out.add(new RecordHeader(h.getKey(), value == null ? null : value.getBytes(StandardCharsets.UTF_8)));
    }
    return out;
  }

  private static Map<String, String> parseArgs(String[] argv) {
    Map<String, String> args = new TreeMap<>();
    for (String arg : argv) {
      int eq = arg.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("expected key=value, got " + arg);
      args.put(arg.substring(0, eq), arg.substring(eq + 1));
    }
    return args;
  }

  private static String require(Map<String, String> args, String key) {
    String value = args.get(key);
    if (value == null || value.isEmpty()) throw new IllegalArgumentException("missing argument " + key + "=...");
    return value;
  }
}
