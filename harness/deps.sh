#!/usr/bin/env bash
# deps.sh check|install — the Debian packages ltbench needs.
# check: exit 0 when every package is installed, 1 (listing what is missing) otherwise.
# install: apt-get install what is missing (as root), or print the exact command.
set -u
PKGS="build-essential libopenblas-dev libopenblas0-openmp libarchive-dev libcurl4-openssl-dev libcjson-dev
libcmocka-dev libjpeg62-turbo-dev gnuplot-nox dataset-fashion-mnist"

missing() {
  local m=""
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || m="$m $p"
  done
  echo "$m"
}

mode=${1:-check}
miss=$(missing)
if [ -z "${miss// /}" ]; then
  [ "$mode" = install ] && echo "deps: all packages present"
  exit 0
fi
if [ "$mode" = check ]; then
  echo "deps: missing:$miss" >&2
  exit 1
fi
cmd="apt-get install -y --no-install-recommends$miss"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive $cmd && exit 0
  fi
  echo "deps: not root; run: sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
echo "deps: installing$miss"
apt-get update -qq || echo "deps: apt-get update failed; trying the install anyway" >&2
DEBIAN_FRONTEND=noninteractive $cmd
