#!/bin/sh
# Installs the Debian packages sluice needs, when any is missing: with apt-get when run as
# root, otherwise prints the exact command and fails, so nothing is built half-equipped.
set -e
PKGS="gcc make pkg-config libluajit-5.1-dev luajit libuv1-dev libmsgpack-dev lua-busted lua-cjson time libreadline-dev tmux clang lua-check graphviz librdkafka-dev kcat libhiredis-dev redis-server libcurl4-openssl-dev libhttp-parser-dev zlib1g-dev libmimalloc-dev openssl python3 wrk"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "deps: missing Debian packages:$missing" >&2
  echo "deps: run: sudo apt-get install -y$missing" >&2
  exit 1
fi
