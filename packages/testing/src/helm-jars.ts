import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { copyRuntimeClasspath, ensureCachedDirectory, walpurgeCacheDir } from './maven-cache.js';
import type { LogFn } from './log.js';

/**
 * helm-java bundles Helm's own Go library (built for linux-amd64) behind a Java API: the chart tests
 * run real `helm lint` and `helm template` without downloading a helm binary.
 */
export const HELM_JAVA_VERSION = '0.0.15';

export interface HelmJarsOptions {
  /** Defaults to $WALPURGE_CACHE_DIR, else ~/.cache/walpurge. */
  cacheDir?: string;
  log?: LogFn;
}

/**
 * The classpath of helm-java (its API, lib-api, the linux-amd64 native library and JNA): a directory
 * of jars fetched from Maven Central with `mvn` once per machine and reused by every later run.
 */
export async function ensureHelmJars(opts: HelmJarsOptions = {}): Promise<string> {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(
      `helm-java ships Helm's library for linux-amd64 only here; this is ${process.platform}-${process.arch}`,
    );
  const dest = await ensureCachedDirectory({
    cacheDir: opts.cacheDir ?? walpurgeCacheDir(),
    name: `helm-java-${HELM_JAVA_VERSION}`,
    label: 'helm-java',
    log: opts.log,
    fill: async (staging) => {
      opts.log?.(`helm-java: fetching com.marcnuri.helm-java:helm-java:${HELM_JAVA_VERSION} with mvn`);
      await copyRuntimeClasspath({
        artifactId: 'helm-java-runtime',
        purpose: "helm-java and Helm's native library for linux-amd64",
        dependencies: [
          { groupId: 'com.marcnuri.helm-java', artifactId: 'helm-java', version: HELM_JAVA_VERSION },
          { groupId: 'com.marcnuri.helm-java', artifactId: 'linux-amd64', version: HELM_JAVA_VERSION },
        ],
        staging,
        why: 'helm-java (the Helm chart tests)',
      });
      const jar = `linux-amd64-${HELM_JAVA_VERSION}.jar`;
      if (!existsSync(join(staging, 'libs', jar)))
        throw new Error(`mvn finished but ${jar} is missing from ${staging}/libs`);
    },
  });
  const libs = join(dest, 'libs');
  opts.log?.(`helm-java: ${readdirSync(libs).length} jars in ${libs}`);
  return libs;
}
