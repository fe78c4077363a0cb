#!/usr/bin/env bash
# make deb: build the Debian package with Debian 12's own tools
# (dpkg-buildpackage, debhelper, dh-python, the system python3).
# The .deb lands in $OUTDIR (default: dist/); the build happens in a
# temporary directory outside the source tree.
#
# Debian 12 has no python3-pywbem: pywbem (and yamlloader, which it needs and
# Debian lacks) are bundled in /usr/lib/kvm-providers/vendor, in the versions
# the project is tested with (those of .venv); the rest of pywbem's
# dependencies come from Debian.  KVM_PROVIDERS_VENDOR_WHEELS=DIR takes the
# wheels from DIR instead of the package index.
set -euo pipefail
source "$(dirname "$0")/common.sh"

WORK=$(mktemp -d /tmp/kvm-providers-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SRC="$WORK/kvm-providers-$VERSION"
copy_tree "$SRC"
cp -r "$TOP/packaging/debian" "$SRC/debian"
cp "$TOP/packaging/kvm-cimom.service" "$SRC/debian/kvm-providers.kvm-cimom.service"
cat > "$SRC/debian/changelog" <<CHANGELOG
kvm-providers ($VERSION) unstable; urgency=medium

  * Package of kvm_providers $VERSION.

 -- kvm_providers developers <kvm-providers@localhost>  $(date -R)
CHANGELOG

# Bundled pywbem, pinned to what the project is tested with.
pin() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo "$2"; }
PYWBEM=$(pin pywbem 1.9.1)
YAMLLOADER=$(pin yamlloader 1.6.0)
PIP_ARGS=(--target "$SRC/vendor" --no-deps --no-compile --quiet)
if [ -n "${KVM_PROVIDERS_VENDOR_WHEELS:-}" ]; then
    PIP_ARGS+=(--no-index --find-links "$KVM_PROVIDERS_VENDOR_WHEELS")
fi
"$PY" -m pip install "${PIP_ARGS[@]}" "pywbem==$PYWBEM" "yamlloader==$YAMLLOADER"
rm -rf "$SRC/vendor/bin"

(cd "$SRC" && dpkg-buildpackage -us -uc -b --no-sign >"$WORK/build.log" 2>&1) || {
    tail -60 "$WORK/build.log"; echo "dpkg-buildpackage failed" >&2; exit 1; }
mkdir -p "$OUTDIR"
cp "$WORK"/*.deb "$OUTDIR"/
ls -1 "$OUTDIR"/kvm-providers_"$VERSION"_*.deb
