#!/usr/bin/env bash
# Make sure the servers the replica set needs are installed: Redis (shared state) and nginx (the
# load balancer), both from Debian. `make test` and the benchmarks call this; the test fixtures
# then start throwaway instances with the configs in deploy/ (never the system-wide services).
#
#   deploy/services.sh install    install redis-server and nginx with apt-get if missing (root)
#   deploy/services.sh check      exit 0 if both are installed, else say what to install
#
# The packages' own services are not started: while installing, a policy-rc.d that refuses
# every start is in place (Docker images already have one).
set -euo pipefail

REDIS=/usr/bin/redis-server
NGINX=/usr/sbin/nginx
PACKAGES=(redis-server nginx)

missing() {
    local out=()
    [[ -x $REDIS ]] || out+=(redis-server)
    [[ -x $NGINX ]] || out+=(nginx)
    echo "${out[@]:-}"
}

explain() {
    echo "deploy/services.sh: the replica tests need the Debian packages: $*" >&2
    echo "    install them as root with:  apt-get update && apt-get install -y --no-install-recommends $*" >&2
}

install_packages() {
    local need
    need=$(missing)
    [[ -z $need ]] && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        explain "$need"
        return 1
    fi
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    # shellcheck disable=SC2086
    if ! { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
               --no-install-recommends $need >/dev/null; }; then
        [[ -n $made_policy ]] && rm -f "$policy"
        explain "$need"
        return 1
    fi
    [[ -n $made_policy ]] && rm -f "$policy"
    need=$(missing)
    if [[ -n $need ]]; then
        explain "$need"
        return 1
    fi
    echo "deploy/services.sh: installed ${PACKAGES[*]}" >&2
}

case "${1:-install}" in
    install) install_packages ;;
    check)
        need=$(missing)
        if [[ -n $need ]]; then explain "$need"; exit 1; fi ;;
    *) echo "usage: $0 install|check" >&2; exit 2 ;;
esac
