# Shared by build-deb.sh and build-rpm.sh (sourced).
# TOP: the source tree; VERSION: the package version; copy_tree DEST: the
# source files (those git knows, plus new unignored ones) copied to DEST.
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' "$TOP/kvm_providers/_version.py")
OUTDIR=${OUTDIR:-$TOP/dist}
PY=${PY:-$TOP/.venv/bin/python}
[ -x "$PY" ] || PY=python3

copy_tree() {
    local dest=$1
    mkdir -p "$dest"
    if git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$TOP" && git ls-files -z --cached --others --exclude-standard) |
        while IFS= read -r -d '' f; do
            [ -f "$TOP/$f" ] || continue          # tracked but deleted in the work tree
            mkdir -p "$dest/$(dirname "$f")"
            cp -p "$TOP/$f" "$dest/$f"
        done
    else
        tar -C "$TOP" --exclude=.venv --exclude=dist --exclude=build --exclude=.git \
            --exclude=__pycache__ -cf - . | tar -C "$dest" -xf -
    fi
}
