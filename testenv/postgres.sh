#!/usr/bin/env bash
# Make sure a PostgreSQL server is installed (from Debian's packages) for the tests.
# Prints the directory holding initdb and postgres as the last line.
set -euo pipefail

find_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! bin=$(find_bin); then
  if [ "$(id -u)" != 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed and this is not root; install the" \
         "Debian package 'postgresql' and run again" >&2
    exit 1
  fi
  echo "postgres.sh: installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
  bin=$(find_bin)
fi
# The Debian package creates this account; initdb refuses to run as root.
id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
echo "$bin"
