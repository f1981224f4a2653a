import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { copyRuntimeClasspath, ensureCachedDirectory } from './maven-cache.js';
import type { LogFn } from './log.js';

/**
 * helm-java bundles Helm's own Go library behind a Java API: the chart tests run real `helm lint` and
 * `helm template` without downloading a helm binary. Its pom picks the native library for the
 * platform mvn runs on (linux/darwin amd64 and arm64, windows amd64) through OS-activated profiles.
 */
export const HELM_JAVA_VERSION = '0.0.15';

export interface HelmJarsOptions {
  /** Defaults to $WALPURGE_CACHE_DIR, else ~/.cache/walpurge. */
  cacheDir?: string;
  log?: LogFn;
}

/** Native library jars of helm-java: `<os>-<arch>-<version>.jar`. */
const NATIVE_JAR = /^(linux|darwin|windows)-(amd64|arm64)-/;

/**
 * The classpath of helm-java (its API, lib-api, this platform's native library and JNA): a directory
 * of jars fetched from Maven Central with `mvn` once per machine and reused by every later run.
 */
export async function ensureHelmJars(opts: HelmJarsOptions = {}): Promise<string> {
  const dest = await ensureCachedDirectory({
    cacheDir: opts.cacheDir,
    name: `helm-java-${HELM_JAVA_VERSION}-${process.platform}-${process.arch}`,
    label: 'helm-java',
    log: opts.log,
    fill: async (staging) => {
      opts.log?.(`helm-java: fetching com.marcnuri.helm-java:helm-java:${HELM_JAVA_VERSION} with mvn`);
      await copyRuntimeClasspath({
        artifactId: 'helm-java-runtime',
        purpose: "helm-java and Helm's native library for this platform",
        dependencies: [
          { groupId: 'com.marcnuri.helm-java', artifactId: 'helm-java', version: HELM_JAVA_VERSION },
        ],
        staging,
        why: 'helm-java (the Helm chart tests)',
      });
      if (!readdirSync(join(staging, 'libs')).some((jar) => NATIVE_JAR.test(jar)))
        throw new Error(
          `mvn resolved helm-java but no native library for ${process.platform}-${process.arch} (helm-java ships linux/darwin amd64 and arm64, windows amd64)`,
        );
    },
  });
  const libs = join(dest, 'libs');
  opts.log?.(`helm-java: ${readdirSync(libs).length} jars in ${libs}`);
  return libs;
}
