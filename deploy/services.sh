#!/usr/bin/env bash
# Make sure the servers the replica set needs are installed: Redis (shared state) and nginx (the
# load balancer), both from Debian. `make test` and the benchmarks call this; the test fixtures
# then start throwaway instances with the configs in deploy/ (never the system-wide services).
# tmux, which the sandbox's terminal test drives, comes in the same apt-get call when it is missing
# (one `apt-get update` for all); without it only that test is skipped.
#
#   deploy/services.sh install    install redis-server, nginx (and tmux) with apt-get if missing (root)
#   deploy/services.sh check      exit 0 if redis-server and nginx are installed, else say what to install
#
# The packages' own services are not started: while installing, a policy-rc.d that refuses
# every start is in place (Docker images already have one).
set -euo pipefail

REDIS=/usr/bin/redis-server
NGINX=/usr/sbin/nginx

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

optional_missing() {
    command -v tmux >/dev/null || echo tmux
}

install_packages() {
    local need optional
    need=$(missing)
    optional=$(optional_missing)
    [[ -z $need && -z $optional ]] && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        failed "$need"
        return
    fi
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    local status=0
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            --no-install-recommends $need $optional >/dev/null || status=$?
    [[ -n $made_policy ]] && rm -f "$policy"
    if [[ $status -ne 0 || -n $(missing) ]]; then
        failed "$(missing)"
        return
    fi
    echo "deploy/services.sh: installed $need $optional" >&2
}

# Nothing could be installed: a missing server stops `make test` saying what to install; tmux alone
# only costs its test.
failed() {
    [[ -n $(optional_missing) ]] && echo "deploy/services.sh: tmux is not installed: the sandbox's terminal test will be skipped" >&2
    if [[ -n $1 ]]; then
        explain "$1"
        return 1
    fi
    return 0
}

case "${1:-install}" in
    install) install_packages ;;
    check)
        need=$(missing)
        if [[ -n $need ]]; then explain "$need"; exit 1; fi ;;
    *) echo "usage: $0 install|check" >&2; exit 2 ;;
esac
