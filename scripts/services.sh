#!/usr/bin/env bash
# Make sure the servers the test suite talks to are up: Redis, MariaDB, PostgreSQL, etcd.
# Installs them from Debian's packages when missing, starts them when stopped, waits until
# each answers. Safe to run again and again.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
{ command -v etcd && command -v etcdctl; } >/dev/null || need_apt+=(etcd-server etcd-client)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

wait_for() {  # wait_for NAME COMMAND...: up to 30 s
    local name=$1; shift
    for _ in $(seq 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "$name did not come up" >&2; return 1
}

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for redis redis-cli -h 127.0.0.1 ping

if ! mysqladmin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_for mariadb mysqladmin -h 127.0.0.1 -uroot ping

if ! pg_isready -h 127.0.0.1 -q; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
wait_for postgresql pg_isready -h 127.0.0.1 -q
# etcd (Debian's 3.4): one member on 127.0.0.1:2379, data under /var/lib/conveyor-etcd.
etcd_ok() { ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:2379 --dial-timeout=1s endpoint health; }
if ! etcd_ok >/dev/null 2>&1; then
    mkdir -p /var/lib/conveyor-etcd /var/log/etcd
    nohup etcd --name conveyor-ci --data-dir /var/lib/conveyor-etcd \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster conveyor-ci=http://127.0.0.1:2380 \
        >/var/log/etcd/ci.log 2>&1 &
fi
wait_for etcd etcd_ok
echo "services up: redis, mariadb, postgresql, etcd"
