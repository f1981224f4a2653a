#!/bin/sh
# Makes sure the binaries the test environment and quickstart start locally are present:
# PostgreSQL server (initdb/postgres), redis-server, a JDK and mvn (Kafka broker and helm-java from
# Maven Central).
# Installs missing ones with apt-get when running as root on Debian/Ubuntu; otherwise says what to install.
set -eu
missing=""
have_pg() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_pg || missing="$missing postgresql"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
if [ "${WALPURGE_SKIP_KAFKA:-}" != "1" ]; then
  # A JDK, not only a JRE: the Helm chart tests run a single-file Java program (java File.java),
  # which needs the compiler module.
  command -v javac >/dev/null 2>&1 || missing="$missing default-jdk-headless"
  command -v mvn >/dev/null 2>&1 || missing="$missing maven"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  # Debian's postgresql package starts a cluster on 5432; our tests never use it.
else
  echo "walpurge needs these system packages (or Docker for Testcontainers):$missing" >&2
  echo "install them with your package manager, e.g. sudo apt-get install$missing" >&2
  exit 1
fi
