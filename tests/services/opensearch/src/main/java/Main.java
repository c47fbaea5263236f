import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configurator;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One single-node OpenSearch cluster on 127.0.0.1 for the tests.
 *
 * <pre>java -cp classes:deps Main ROOT HTTP_PORT TRANSPORT_PORT [--exit-on-stdin-eof]</pre>
 *
 * ROOT holds home/, data/ and logs/. SIGTERM closes the node and exits 0. With
 * --exit-on-stdin-eof the node also stops when its standard input closes, so a test run that
 * dies without stopping it (SIGKILL, a crash) does not leave a JVM holding a gigabyte behind:
 * the parent keeps the pipe's other end open for as long as it wants the node.
 */
public final class Main {
    /** The modules the tests need, named by class so a renamed module fails the build, not the run. */
    private static final List<Class<? extends Plugin>> MODULES = List.of(
        Netty4Plugin.class,
        CommonAnalysisPlugin.class,
        PainlessPlugin.class,
        ReindexPlugin.class,
        MapperExtrasPlugin.class
    );

    /** Node's constructor that takes plugin classes (not plugin folders) is protected. */
    private static final class ClasspathNode extends Node {
        ClasspathNode(Environment env) {
            super(env, MODULES, true);
        }
    }

    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: Main ROOT HTTP_PORT TRANSPORT_PORT [--exit-on-stdin-eof]");
            System.exit(2);
        }
        Path root = Path.of(args[0]).toAbsolutePath();
        String httpPort = args[1];
        String transportPort = args[2];
        boolean watchStdin = args.length > 3 && args[3].equals("--exit-on-stdin-eof");

        Path home = root.resolve("home");
        // Empty on purpose: plugins come from the classpath; these folders only have to exist.
        Files.createDirectories(home.resolve("modules"));
        Files.createDirectories(home.resolve("plugins"));

        String nodeName = "dkdata-test";
        Settings settings = Settings.builder()
            .put("cluster.name", "dkdata-tests")
            .put("node.name", nodeName)
            .put("path.home", home.toString())
            .put("path.data", root.resolve("data").toString())
            .put("path.logs", root.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("discovery.type", "single-node")
            // Shared CI disks run nearly full; past the flood stage indices turn read-only.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            // With a small heap the real-memory breaker trips on ordinary bulk requests.
            .put("indices.breaker.total.use_real_memory", false)
            // Log4j's default is ERROR only: startup progress is what explains a node that never
            // turns green.
            .put("logger.level", "INFO")
            .build();

        LogConfigurator.registerErrorListener();
        LogConfigurator.configureWithoutConfig(settings);
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> nodeName);
        Node node = new ClasspathNode(env);

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (IOException | InterruptedException e) {
                e.printStackTrace();
            }
            LoggerContext context = (LoggerContext) LogManager.getContext(false);
            Configurator.shutdown(context);
            // A node closed on request is a clean exit, not the JVM's 143 for SIGTERM.
            Runtime.getRuntime().halt(0);
        }, "dkdata-shutdown"));

        node.start();
        System.out.println("dkdata: node started, http on 127.0.0.1:" + httpPort);
        System.out.flush();

        if (watchStdin) {
            InputStream in = System.in;
            byte[] buf = new byte[256];
            while (in.read(buf) >= 0) {
                // Anything written is ignored; only the end of the stream matters.
            }
            System.exit(0);
        }
        // The node's threads are daemons: keep the JVM up until a signal ends it.
        Thread.currentThread().join();
    }
}
