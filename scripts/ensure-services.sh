#!/usr/bin/env bash
# PostgreSQL (127.0.0.1:5432, trust for local TCP), MariaDB (127.0.0.1:3306, root without a
# password) and Redis (127.0.0.1:6379) for the tests: installed when absent, started when
# stopped. Idempotent.
set -euo pipefail
say() { printf '[services] %s\n' "$*"; }
apt_ready=
apt_install() {
  if [ -z "$apt_ready" ]; then apt-get update -qq; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    say "installing PostgreSQL"
    apt_install postgresql
    ver="$(ls /etc/postgresql | sort -V | tail -n 1)"
    hba="/etc/postgresql/$ver/main/pg_hba.conf"
    # Tests connect as postgres over local TCP without a password, as on the CI machines.
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  ver="$(ls /etc/postgresql | sort -V | tail -n 1)"
  say "starting PostgreSQL $ver"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
  pg_isready -h 127.0.0.1 -p 5432 -q || { say "PostgreSQL did not start"; exit 1; }
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  if ! command -v redis-server >/dev/null 2>&1; then
    say "installing Redis"
    apt_install redis-server
  fi
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done
  redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG || { say "Redis did not start"; exit 1; }
fi
mysql_up() { mariadb -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' >/dev/null 2>&1; }
if ! mysql_up; then
  if [ ! -x /usr/sbin/mariadbd ]; then
    say "installing MariaDB"
    apt_install mariadb-server
  fi
  if ! mariadb-admin -u root ping >/dev/null 2>&1; then
    say "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 1 100); do mariadb-admin -u root ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  if ! mysql_up; then
    # A new install lets root in by its socket only: the tests sign in over TCP, as on the CI
    # machines, as root without a password (the server listens on this machine only).
    say "letting root in over TCP without a password"
    mariadb -u root -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); \
      CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY ''; \
      GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
  fi
  mysql_up || { say "MariaDB did not start"; exit 1; }
fi
say "PostgreSQL, MariaDB and Redis are up"
