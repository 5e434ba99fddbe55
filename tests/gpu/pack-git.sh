#!/usr/bin/env bash
# tests/gpu/pack-git.sh [DIR] — the commit of this checkout, alone, as a
# small git repository in DIR (default .gpudeps/git), for the GPU machine.
#
# Why: the device tool copies the working tree but not .git, and a result
# records env.commit and env.dirty from `git rev-parse HEAD` and `git
# status` at run time (harness/lt_run_env.c); without them a GPU run's rows
# say "commit unknown" and cannot be committed (README, "Numbers are
# products of committed code"). tests/gpu/train.sh points git at DIR
# (gpu_env_git in tests/gpu/env.sh), so the runs there record the commit
# and whether the copied tree differs from it.
#
# What: HEAD's commit, trees and blobs (but those of results/ and
# plots/out/, below) in one pack, marked shallow (no parents: about 1.6 MB
# instead of the history), with a branch at it. Run it
# after the last commit and before the device call: it says when the tree
# has uncommitted changes (their runs would be dirty, as they are here).
# .gpudeps travels with `carry`; the device tool's 64 MiB limit is checked
# with the .debs.
set -euo pipefail
die() { echo "tests/gpu/pack-git.sh: ERROR: $*" >&2; exit 1; }
. "$(dirname "$0")/env.sh"   # gpu_tree_changes (functions only)
# PACKGIT_REPO: another checkout to pack (tests/test_fingerprint.c packs a
# repository of its own); by default the one this script is in
cd "${PACKGIT_REPO:-$(dirname "$0")/../..}"
OUT=${1:-.gpudeps/git}
command -v git >/dev/null || die "needs git"
sha=$(git rev-parse --verify HEAD) || die "not in a git checkout"
rm -rf "$OUT"
mkdir -p "$OUT"
git init -q --bare "$OUT"
git -C "$OUT" config core.bare false   # used with a work tree (GIT_WORK_TREE) there
git -C "$OUT" config core.fileMode false   # a copy that loses executable bits is not a change
# Every object but the blobs under results/ and plots/out/: each git command
# a run makes there excludes those paths (harness/lt_run_env.c,
# gpu_env_git), and they are half the pack (committed runs, figures), which
# with the .debs must fit the device tool's 64 MiB. Trees are all kept
# (read-tree HEAD needs them); a blob a kept path shares stays.
tmpd=$(mktemp -d /tmp/packgit.XXXXXX)
trap 'rm -rf "$tmpd"' EXIT
git ls-tree -r "$sha" | awk -F '\t' '{ split($1, m, " "); if (m[2] == "blob") print m[3], $2 }' > "$tmpd/blobs"
awk '$2 !~ /^(results|plots\/out)\// { print $1 }' "$tmpd/blobs" | sort -u > "$tmpd/keep"
awk '$2 ~ /^(results|plots\/out)\// { print $1 }' "$tmpd/blobs" | sort -u | comm -23 - "$tmpd/keep" > "$tmpd/drop"
git rev-list --objects --no-walk "$sha" | awk 'NR == FNR { drop[$1] = 1; next } !($1 in drop)' "$tmpd/drop" - |
    git pack-objects -q "$OUT/objects/pack/pack" >/dev/null
echo "$sha" > "$OUT/shallow"
git -C "$OUT" update-ref refs/heads/gpu "$sha"
git -C "$OUT" symbolic-ref HEAD refs/heads/gpu
git -C "$OUT" cat-file -e "$sha^{tree}" || die "the packed commit cannot be read back"
# the commands the GPU machine runs, here on this work tree: they must find
# every object they need in the pack (git says "unable to read" otherwise)
GIT_DIR="$OUT" GIT_WORK_TREE="$PWD" GIT_INDEX_FILE="$tmpd/index" git read-tree HEAD ||
    die "read-tree HEAD from the pack failed"
GIT_DIR="$OUT" GIT_WORK_TREE="$PWD" GIT_INDEX_FILE="$tmpd/index" gpu_tree_changes > "$tmpd/out" 2> "$tmpd/err" ||
    die "git status on the pack failed: $(head -3 "$tmpd/err")"
GIT_DIR="$OUT" GIT_WORK_TREE="$PWD" GIT_INDEX_FILE="$tmpd/index" git --no-optional-locks diff HEAD --no-ext-diff \
    --no-color --no-textconv --binary -- . ':(exclude)results' ':(exclude)plots/out' > "$tmpd/out" 2> "$tmpd/err" ||
    die "git diff HEAD on the pack failed: $(head -3 "$tmpd/err")"
echo "tests/gpu/pack-git.sh: $OUT: commit $sha, $(du -sh "$OUT" | cut -f1) ($(wc -l < "$tmpd/drop") blobs of results/ and plots/out/ left out)"
changed=$(gpu_tree_changes | wc -l)
[ "$changed" -eq 0 ] || echo "tests/gpu/pack-git.sh: note: $changed files differ from the commit: GPU runs of this tree will be dirty"
if [ -d .gpudeps ]; then
    total=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) + $(du -sb .gpudeps | cut -f1) ))
    echo "tests/gpu/pack-git.sh: working tree + .gpudeps: $(( total / 1048576 )) MiB (the device tool carries at most 64 MiB)"
    [ "$total" -le $(( 64 * 1048576 )) ] || die "over the 64 MiB the device tool carries"
fi
