// Runs `helm lint` and `helm template` jobs through helm-java (Helm's own Go library, loaded with JNA)
// in one JVM, so a whole values matrix costs one JVM start and one Helm initialisation.
//
//   java -cp '<helm-java jars>/*' HelmRunner.java JOBS_FILE
//
// JOBS_FILE has one job per line, tab-separated:
//   lint      CHART_DIR  OUT_FILE
//   template  CHART_DIR  RELEASE  NAMESPACE  VALUES_FILE  OUT_FILE
// A template job writes the rendered manifests to OUT_FILE; a lint job writes `failed=<bool>` and
// then one message per line. A job that throws writes the error to OUT_FILE.error instead, and the
// runner goes on with the next job (a failing values case must not hide the others).
//
// Helm's library logs to the process's stderr, and lint reports a template's `fail` only there (as
// "[INFO] Fail: ..."): the runner prints "walpurge-helm-job N" to stderr before job N (counting from
// 0), so the caller can tell which job logged what.
import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

public class HelmRunner {
  public static void main(String[] args) throws Exception {
    if (args.length != 1) throw new IllegalArgumentException("usage: HelmRunner JOBS_FILE");
    List<String> jobs = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
    int index = 0;
    for (String line : jobs) {
      if (line.isBlank()) continue;
      System.err.println("walpurge-helm-job " + index++);
      String[] job = line.split("\t", -1);
      Path out = Paths.get(job[job.length - 1]);
      try {
        Files.writeString(out, run(job), StandardCharsets.UTF_8);
      } catch (Exception e) {
        String message = e.getMessage() == null ? e.toString() : e.getMessage();
        Files.writeString(Paths.get(out + ".error"), message, StandardCharsets.UTF_8);
      }
    }
  }

  private static String run(String[] job) {
    Helm chart = new Helm(Paths.get(job[1]));
    switch (job[0]) {
      case "lint": {
        LintResult result = chart.lint().strict().call();
        return "failed=" + result.isFailed() + "\n" + String.join("\n", result.getMessages()) + "\n";
      }
      case "template":
        return chart
            .template()
            .withName(job[2])
            .withNamespace(job[3])
            .withValuesFile(Paths.get(job[4]))
            .call();
      default:
        throw new IllegalArgumentException("unknown job " + job[0]);
    }
  }
}
