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
FLAGS="-trimpath -buildvcs=auto"
DIST=dist
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$DIST"
mkdir -p "$DIST"

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
cp FyneApp.toml "$WORK/FyneApp.toml.orig"
rc=0
"$FYNE" package -os linux -icon assets/icon.png -executable "$WORK/thepeerdrop" || rc=$?
cp "$WORK/FyneApp.toml.orig" FyneApp.toml
[ $rc -eq 0 ]
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
# GLFW links libGL and libX11 and opens the other X libraries when it starts.
cat > "$root/DEBIAN/control" <<CONTROL
Package: thepeerdrop
Version: $VERSION
Architecture: amd64
Maintainer: The ThePeerDrop developers <dev@thepeerdrop.org>
Installed-Size: $size
Depends: libc6, libgl1, libx11-6, libxcursor1, libxrandr2, libxinerama1, libxi6, libxxf86vm1
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
rc=0
CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc "$FYNE" package -os windows -icon assets/icon.png -release || rc=$?
cp "$WORK/FyneApp.toml.orig" FyneApp.toml
[ $rc -eq 0 ]
mkdir -p "$WORK/win"
mv ThePeerDrop.exe "$WORK/win/"
cp README.md "$WORK/win/"
(cd "$WORK/win" && zip -qr9 "$OLDPWD/$DIST/ThePeerDrop-$VERSION-windows-amd64.zip" .)

(cd "$DIST" && sha256sum -- * > SHA256SUMS)
echo "==> $DIST:"
ls -l "$DIST"
