#!/bin/sh
# make test-release: make release on a clean checkout of HEAD, then check
# what it wrote as a user meets it. Installs the .deb on this machine
# (and removes it again): run as root.
set -eu

GO=${GO:-go}
SRC=$(pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
git clone -q "$SRC" "$WORK/src"
cd "$WORK/src"
GO=$GO sh deploy/release/release.sh
VERSION=$(sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
cd dist
fail() { echo "test-release: FAIL: $*" >&2; exit 1; }
ok() { echo "test-release: ok: $*"; }

# Every file is listed in SHA256SUMS, and matches it.
sha256sum -c --quiet SHA256SUMS || fail "a checksum does not match"
for f in *; do
	[ "$f" = SHA256SUMS ] && continue
	grep -q " $f\$" SHA256SUMS || fail "$f is not in SHA256SUMS"
done
ok "SHA256SUMS covers $(($(wc -l < SHA256SUMS))) files"

# The static CLIs: one archive per system, each with the README.
for os in linux darwin freebsd; do
	for arch in amd64 arm64; do
		tar -tzf "peerdrop-$VERSION-$os-$arch.tar.gz" | grep -qx "peerdrop-$VERSION-$os-$arch/README.md" || fail "$os/$arch: no README"
	done
done
for arch in amd64 arm64; do
	unzip -l "peerdrop-$VERSION-windows-$arch.zip" | grep -q "peerdrop.exe" || fail "windows/$arch: no peerdrop.exe"
done
tar -xzf "peerdrop-$VERSION-linux-amd64.tar.gz" -C "$WORK"
file "$WORK/peerdrop-$VERSION-linux-amd64/peerdrop" | grep -q "statically linked" || fail "the Linux CLI is not static"
$GO version -m "$WORK/peerdrop-$VERSION-linux-amd64/peerdrop" | grep -q "vcs.modified=false" || fail "the CLI does not say it was built from a clean commit"
"$WORK/peerdrop-$VERSION-linux-amd64/peerdrop" --version | grep -q "^peerdrop $VERSION" || fail "the CLI's --version"
ok "CLIs"

# The .deb: its control data, its desktop and AppStream files.
deb="thepeerdrop_${VERSION}_amd64.deb"
dpkg-deb --info "$deb" | grep -q "Version: $VERSION" || fail "dpkg-deb --info"
dpkg-deb --info "$deb" | grep -q "libc6 (>= 2\." || fail "the .deb does not say which glibc it needs"
mkdir "$WORK/x"
dpkg-deb -x "$deb" "$WORK/x"
desktop-file-validate "$WORK/x/usr/share/applications/org.thepeerdrop.app.desktop" || fail "desktop-file-validate"
appstreamcli validate --no-net --pedantic "$WORK/x/usr/share/metainfo/org.thepeerdrop.app.metainfo.xml" ||
	appstreamcli validate --no-net "$WORK/x/usr/share/metainfo/org.thepeerdrop.app.metainfo.xml" || fail "appstreamcli validate"
for s in 16 24 32 48 64 128 256; do
	file "$WORK/x/usr/share/icons/hicolor/${s}x${s}/apps/org.thepeerdrop.app.png" | grep -q "$s x $s" || fail "icon ${s}x$s"
done
ok "the .deb's files"

# Installed as a user would: dpkg -i, then apt-get -f install for any
# runtime library missing; the commands run; dpkg -r removes it all.
if dpkg -s thepeerdrop >/dev/null 2>&1; then fail "thepeerdrop is already installed here: remove it first"; fi
trap 'dpkg -r thepeerdrop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
dpkg -i "$deb" || DEBIAN_FRONTEND=noninteractive apt-get -f install -y -q || fail "dpkg -i"
dpkg -s thepeerdrop | grep -q "Status: install ok installed" || fail "not installed"
/usr/bin/peerdrop --version | grep -q "^peerdrop $VERSION" || fail "peerdrop --version"
/usr/bin/thepeerdrop --version 2>/dev/null | grep -q "^thepeerdrop $VERSION" || fail "thepeerdrop --version"
files=$(dpkg -L thepeerdrop | while read -r f; do [ -f "$f" ] && echo "$f"; done)
[ -n "$files" ] || fail "dpkg -L lists no file"
[ ! -e /etc/xdg/autostart/org.thepeerdrop.app.desktop ] || fail "an autostart entry was installed"
dpkg -r thepeerdrop >/dev/null
trap 'rm -rf "$WORK"' EXIT
for f in $files; do
	[ ! -e "$f" ] || fail "$f is left after dpkg -r"
done
ok "dpkg -i, --version, dpkg -r ($(echo "$files" | wc -l) files)"

# The Windows app: a PE32+ GUI program with its version.
unzip -q "ThePeerDrop-$VERSION-windows-amd64.zip" -d "$WORK/win"
file "$WORK/win/ThePeerDrop.exe" | grep -q "PE32+ executable (GUI) x86-64" || fail "ThePeerDrop.exe: $(file "$WORK/win/ThePeerDrop.exe")"
strings -el "$WORK/win/ThePeerDrop.exe" | grep -q "^$VERSION" || fail "ThePeerDrop.exe carries no version $VERSION"
$GO version -m "$WORK/win/ThePeerDrop.exe" | grep -q "vcs.revision=$(git rev-parse HEAD)" || fail "ThePeerDrop.exe does not carry its commit"
ok "ThePeerDrop.exe"

echo "test-release: passed; dist/:"
ls -l
