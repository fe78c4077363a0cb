#!/usr/bin/env bash
# make rpm: build the RPM with rpmbuild (Debian's rpm package works).
# The .rpm lands in $OUTDIR (default: dist/); the build happens in a
# temporary directory outside the source tree.  Build dependencies are not
# checked (--nodeps): on Debian the RPM database is empty.
set -euo pipefail
source "$(dirname "$0")/common.sh"

WORK=$(mktemp -d /tmp/kvm-providers-rpm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
copy_tree "$WORK/kvm-providers-$VERSION"
tar -C "$WORK" -czf "$WORK/SOURCES/kvm-providers-$VERSION.tar.gz" "kvm-providers-$VERSION"
sed "s/@VERSION@/$VERSION/" "$TOP/packaging/rpm/kvm-providers.spec" \
    > "$WORK/SPECS/kvm-providers.spec"
rpmbuild --define "_topdir $WORK" --nodeps -bb "$WORK/SPECS/kvm-providers.spec" \
    >"$WORK/build.log" 2>&1 || { tail -60 "$WORK/build.log"; echo "rpmbuild failed" >&2; exit 1; }
mkdir -p "$OUTDIR"
cp "$WORK"/RPMS/noarch/*.rpm "$OUTDIR"/
ls -1 "$OUTDIR"/kvm-providers-"$VERSION"-*.noarch.rpm
