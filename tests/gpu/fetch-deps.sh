#!/usr/bin/env bash
# tests/gpu/fetch-deps.sh [DIR] — download the Debian 12 .debs the GPU
# machine lacks into DIR (default .gpudeps, which .gitignore names), on a
# machine where apt works. tests/gpu/env.sh unpacks
# them there with dpkg -x into a temp folder (never into /).
#
# What: the engine's build needs (OpenBLAS, CMocka, cJSON: tests/gpu/run.sh)
# plus what ./ltbench links (libarchive, libcurl, libjpeg-turbo:
# tests/gpu/train.sh): the -dev packages for headers and link symlinks, the
# runtime libraries, and every library those runtime libraries need,
# recursively (apt-cache depends --recurse, no recommends), since the GPU
# machine has none of them. Left out: the C runtime the machine has (libc6,
# libgcc-s1, libstdc++6 and gcc-12-base): a foreign libc cannot be loaded
# beside the system's. The -dev packages are not recursed (libcurl's would
# pull libssl-dev, libkrb5-dev, ...): only ltbench's direct libraries are
# linked by name. The .debs are slimmed (below), about 22 MB.
#
# Also Debian's dataset-fashion-mnist (31 MB: the four IDX .gz files the
# fmnist registry entry pins), for the GPU training runs of
# tests/gpu/train.sh: that machine cannot download it. Unpacked with the
# rest, its files are copied into the run's data folder there.
# The device tool carries at most 64 MiB with the working tree (~6 MiB):
# the total is printed and checked.
set -euo pipefail
OUT=${1:-.gpudeps}
die() { echo "tests/gpu/fetch-deps.sh: ERROR: $*" >&2; exit 1; }
command -v apt-get >/dev/null && command -v apt-cache >/dev/null || die "needs apt-get and apt-cache (a Debian 12 machine)"

DEV="libopenblas-pthread-dev libcmocka-dev libcjson-dev libarchive-dev libcurl4-openssl-dev libjpeg62-turbo-dev"
RUNTIME="libopenblas0-pthread libcmocka0 libcjson1 libarchive13 libcurl4 libjpeg62-turbo"
SKIP=" libc6 libgcc-s1 libstdc++6 gcc-12-base "

# the runtime closure: real package names only (virtual ones print as <name>)
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
              --no-replaces --no-enhances $RUNTIME | grep -v '^ ' | grep -v '^<' | sort -u)
pkgs="$DEV dataset-fashion-mnist"
for p in $closure; do
    case "$p" in lib*|zlib1g) ;; *) continue ;; esac
    case "$SKIP" in *" $p "*) continue ;; esac
    pkgs="$pkgs $p"
done
mkdir -p "$OUT"
echo "fetch-deps: $(echo $pkgs | wc -w) packages into $OUT:"
echo "  $pkgs"
(cd "$OUT" && apt-get download $pkgs) || die "apt-get download failed (apt-get update first?)"
# Slim them: the GPU machine needs headers, shared libraries and link
# symlinks only. Static libraries (libopenblas.a alone is 5 MB of the -dev
# .deb), documentation and man pages go, so the .debs plus the raw
# Fashion-MNIST files (tests/gpu/README.md) fit the device tool's 64 MiB.
command -v dpkg-deb >/dev/null || die "needs dpkg-deb"
TMPD=$(mktemp -d /tmp/fetchdeps.XXXXXX)
for f in "$OUT"/*.deb; do
    case "$(basename "$f")" in dataset-*) continue ;; esac   # compressed data: nothing to gain
    rm -rf "$TMPD/x"
    dpkg-deb -R "$f" "$TMPD/x"
    find "$TMPD/x" -name '*.a' -delete
    rm -rf "$TMPD/x/usr/share/doc" "$TMPD/x/usr/share/man" "$TMPD/x/usr/share/lintian" "$TMPD/x/usr/share/info"
    # ICU is there for libxml2 (libarchive's), which needs libicuuc and that
    # libicudata alone: the other four libraries are 1.2 MB of the .debs
    case "$(basename "$f")" in
        libicu[0-9]*) rm -f "$TMPD"/x/usr/lib/*/libicu{i18n,io,tu,test}.so* ;;
    esac
    # md5sums would list the removed files
    rm -f "$TMPD/x/DEBIAN/md5sums"
    # xz at its strongest (a 64 MiB window): OpenBLAS's one library of
    # kernels for every CPU repeats itself at long range (6.7 -> 4.6 MB);
    # kept only where it came out smaller
    dpkg-deb --root-owner-group -Zxz -z9 -Sextreme -b "$TMPD/x" "$TMPD/slim.deb" >/dev/null ||
        die "dpkg-deb could not repack $(basename "$f")"
    if [ "$(stat -c %s "$TMPD/slim.deb")" -lt "$(stat -c %s "$f")" ]; then mv "$TMPD/slim.deb" "$f"; fi
done
rm -rf "$TMPD"
total=$(du -cb "$OUT"/*.deb | tail -1 | cut -f1)
echo "fetch-deps: $(ls "$OUT"/*.deb | wc -l) .debs, $((total / 1048576)) MiB in $OUT"
[ "$total" -lt $((56 * 1048576)) ] || echo "fetch-deps: WARNING: over 56 MiB: the device tool carries 64 MiB in all, working tree included" >&2
