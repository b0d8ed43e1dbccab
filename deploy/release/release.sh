#!/bin/sh
# make release: writes dist/ with everything a user installs (README.md,
# "Install"): static CLIs for eight systems, the Linux desktop app as a
# .tar.xz and a .deb, the Windows desktop app (cross-built with mingw-w64)
# in a .zip, and SHA256SUMS over all of them. Run from the repository root.
set -eu

GO=${GO:-go}
FYNE_TOOL=${FYNE_TOOL:-fyne.io/tools/cmd/fyne@v1.7.4}
VERSION=$(sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
APP_ID=$(sed -n 's/^ID *= *"\(.*\)"/\1/p' FyneApp.toml)
DATE=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
# The commit is stamped in (--version) where git can read this checkout.
VCS=-buildvcs=false
git status --porcelain >/dev/null 2>&1 && VCS=-buildvcs=auto
FLAGS="-trimpath $VCS"
DIST=dist
[ "$($GO env GOARCH)" = amd64 ] || { echo "release: build on amd64 (the .deb and the Windows app are amd64)" >&2; exit 1; }
WORK=$(mktemp -d)
cp FyneApp.toml "$WORK/FyneApp.toml.orig"
# Whatever happens, FyneApp.toml is as it was and the fyne tool's files
# are gone from the checkout (an interrupted fyne leaves them).
cleanup() {
	cp "$WORK/FyneApp.toml.orig" FyneApp.toml
	rm -f fyne.syso fyne_metadata_init.go FyneApp.ico ThePeerDrop.exe ThePeerDrop.tar.xz
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
rm -rf "$DIST"
mkdir -p "$DIST"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
	echo "release: warning: the checkout has changes that are not committed (--version says +changes)" >&2
fi

echo "==> ThePeerDrop $VERSION ($DATE)"
# The fyne tool, built for this machine (it builds for others itself).
GOBIN="$WORK/bin" $GO install $FYNE_TOOL
FYNE="$WORK/bin/fyne"

# Static command-line tools: no cgo, stripped, each archive with the README.
for os in linux windows darwin freebsd; do
	for arch in amd64 arm64; do
		name="peerdrop-$VERSION-$os-$arch"
		mkdir -p "$WORK/$name"
		exe=peerdrop
		[ "$os" = windows ] && exe=peerdrop.exe
		echo "==> $name"
		CGO_ENABLED=0 GOOS=$os GOARCH=$arch $GO build $FLAGS -ldflags "-s -w" -o "$WORK/$name/$exe" ./cmd/peerdrop
		cp README.md "$WORK/$name/"
		if [ "$os" = windows ]; then
			(cd "$WORK" && zip -qr9 "$OLDPWD/$DIST/$name.zip" "$name")
		else
			tar -C "$WORK" -czf "$DIST/$name.tar.gz" --owner=0 --group=0 "$name"
		fi
	done
done

# The Linux desktop app (cgo, GL/X11), stripped.
echo "==> the Linux desktop app"
CGO_ENABLED=1 $GO build $FLAGS -ldflags "-s -w" -o "$WORK/thepeerdrop" .
CGO_ENABLED=0 $GO build $FLAGS -ldflags "-s -w" -o "$WORK/peerdrop" ./cmd/peerdrop

# As the fyne tool packages it (a .tar.xz with a Makefile that installs it).
"$FYNE" package -os linux -icon assets/icon.png -executable "$WORK/thepeerdrop"
cp "$WORK/FyneApp.toml.orig" FyneApp.toml
mv ThePeerDrop.tar.xz "$DIST/thepeerdrop-$VERSION-linux-amd64.tar.xz"

# As a Debian package, built with Debian's own dpkg-deb.
echo "==> the .deb"
root="$WORK/deb"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/applications" "$root/usr/share/metainfo" \
	"$root/usr/share/icons/hicolor" "$root/usr/share/doc/thepeerdrop"
install -m 0755 "$WORK/thepeerdrop" "$WORK/peerdrop" "$root/usr/bin/"
sed -e "s/^Icon=.*/Icon=$APP_ID/" assets/thepeerdrop.desktop > "$root/usr/share/applications/$APP_ID.desktop"
chmod 0644 "$root/usr/share/applications/$APP_ID.desktop"
sed -e "s/@VERSION@/$VERSION/; s/@DATE@/$DATE/" deploy/release/$APP_ID.metainfo.xml > "$root/usr/share/metainfo/$APP_ID.metainfo.xml"
$GO run ./internal/tools/icons assets/icon.png "$root/usr/share/icons/hicolor" "$APP_ID" 16 24 32 48 64 128 256
gzip -9n < README.md > "$root/usr/share/doc/thepeerdrop/README.md.gz"
find "$root/usr" -type d -exec chmod 0755 {} +
find "$root/usr/share" -type f -exec chmod 0644 {} +
size=$(du -sk "$root/usr" | cut -f1)
# The newest glibc symbol version the app needs is the least libc6 it runs on.
glibc=$(objdump -T "$WORK/thepeerdrop" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
# GLFW links libGL and libX11 and opens the other X libraries when it starts.
cat > "$root/DEBIAN/control" <<CONTROL
Package: thepeerdrop
Version: $VERSION
Architecture: amd64
Maintainer: The ThePeerDrop developers <dev@thepeerdrop.org>
Installed-Size: $size
Depends: libc6 (>= $glibc), libgl1, libx11-6, libxcursor1, libxrandr2, libxinerama1, libxi6, libxxf86vm1
Section: net
Priority: optional
Homepage: https://github.com/thepeerdrop/peerdrop
Description: send files to nearby devices, directly
 ThePeerDrop sends files and short messages between devices on the same
 network, directly from one to the other. Nearby devices appear by
 themselves; phones and tablets join from a browser, and LocalSend's apps
 appear too. The package has the desktop app (thepeerdrop) and the
 command line (peerdrop).
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$root" "$DIST/thepeerdrop_${VERSION}_amd64.deb" >/dev/null

# The Windows desktop app, cross-built with mingw-w64; the fyne tool gives
# it its icon and version resource.
echo "==> the Windows desktop app"
# The fyne tool runs go build itself: GOFLAGS carries the stamping.
GOFLAGS="${GOFLAGS:-} $VCS" CGO_ENABLED=1 GOARCH=amd64 CC=x86_64-w64-mingw32-gcc \
	"$FYNE" package -os windows -icon assets/icon.png -release
cp "$WORK/FyneApp.toml.orig" FyneApp.toml
mkdir -p "$WORK/win"
mv ThePeerDrop.exe "$WORK/win/"
cp README.md "$WORK/win/"
(cd "$WORK/win" && zip -qr9 "$OLDPWD/$DIST/ThePeerDrop-$VERSION-windows-amd64.zip" .)

(cd "$DIST" && sha256sum -- * > SHA256SUMS)
echo "==> $DIST:"
ls -l "$DIST"
