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
# What: HEAD's commit, tree and blobs in one pack, marked shallow (no
# parents: about 3 MB instead of the history), with a branch at it. Run it
# after the last commit and before the device call: it says when the tree
# has uncommitted changes (their runs would be dirty, as they are here).
# .gpudeps travels with `carry`; the device tool's 64 MiB limit is checked
# with the .debs.
set -euo pipefail
die() { echo "tests/gpu/pack-git.sh: ERROR: $*" >&2; exit 1; }
cd "$(dirname "$0")/../.."
OUT=${1:-.gpudeps/git}
command -v git >/dev/null || die "needs git"
sha=$(git rev-parse --verify HEAD) || die "not in a git checkout"
rm -rf "$OUT"
mkdir -p "$OUT"
git init -q --bare "$OUT"
git -C "$OUT" config core.bare false   # used with a work tree (GIT_WORK_TREE) there
git -C "$OUT" config core.fileMode false   # a copy that loses executable bits is not a change
git rev-list --objects --no-walk "$sha" | git pack-objects -q "$OUT/objects/pack/pack" >/dev/null
echo "$sha" > "$OUT/shallow"
git -C "$OUT" update-ref refs/heads/gpu "$sha"
git -C "$OUT" symbolic-ref HEAD refs/heads/gpu
git -C "$OUT" cat-file -e "$sha^{tree}" || die "the packed commit cannot be read back"
echo "tests/gpu/pack-git.sh: $OUT: commit $sha, $(du -sh "$OUT" | cut -f1)"
# what harness/lt_run_env.c calls dirty: tracked changes outside results/
# and plots/out/, and untracked sources in the folders built by wildcard
changed=$(( $(git status --porcelain --untracked-files=no -- . ':(exclude)results' ':(exclude)plots/out' | wc -l) +
            $(git ls-files --others --exclude-standard -- engine datasets harness methods | wc -l) ))
[ "$changed" -eq 0 ] || echo "tests/gpu/pack-git.sh: note: $changed files differ from the commit: GPU runs of this tree will be dirty"
if [ -d .gpudeps ]; then
    total=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) + $(du -sb .gpudeps | cut -f1) ))
    echo "tests/gpu/pack-git.sh: working tree + .gpudeps: $(( total / 1048576 )) MiB (the device tool carries at most 64 MiB)"
    [ "$total" -le $(( 64 * 1048576 )) ] || die "over the 64 MiB the device tool carries"
fi
