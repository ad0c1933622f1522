#!/bin/sh
# Fetches the player libraries the console's player page loads (mpegts.js for HTTP-FLV,
# hls.js for HLS) from the npm registry, at pinned versions, checks their hashes, and installs
# them as DIR/lib/{mpegts.js,hls.min.js} with their licenses:
#
#   packaging/web-assets.sh DIR       e.g. target/www (a source checkout) or a package's
#                                     usr/share/srsd/www
#
# They are not embedded in the binary (~650 KB); srsd serves them from `console.www`
# (default /usr/share/srsd/www, else target/www). Needs npm (for `npm pack`), tar, sha256sum.
# Does nothing when DIR already holds these versions.
set -eu

DIR=${1:?usage: packaging/web-assets.sh DIR}
# name version sha256-of-the-npm-tarball file-in-package installed-name
ASSETS="mpegts.js 1.8.2 fc0632083671b7a5ee03fd80e479bdf9f20f41015b957969aaf86703fb1c7bc0 dist/mpegts.js mpegts.js
hls.js 1.7.4 e4ab3d5d13f7cca9ef241d098f39686e19fd451831ba07dc9943482fd5ff75c7 dist/hls.min.js hls.min.js"

mkdir -p "$DIR/lib"
STAMP="$DIR/lib/VERSIONS"
want=$(printf '%s\n' "$ASSETS" | awk '{ print $1 "@" $2 }')
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] &&
    [ -f "$DIR/lib/mpegts.js" ] && [ -f "$DIR/lib/hls.min.js" ]; then
    exit 0
fi
command -v npm >/dev/null || { echo "web-assets.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/srsd-www.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
printf '%s\n' "$ASSETS" | while read -r name version sha file out; do
    (cd "$TMP" && npm pack --silent "$name@$version" >/dev/null)
    tgz="$TMP/$name-$version.tgz"
    got=$(sha256sum "$tgz" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
        echo "web-assets.sh: $name@$version: sha256 $got, expected $sha" >&2
        exit 1
    fi
    mkdir -p "$TMP/$name"
    tar xzf "$tgz" -C "$TMP/$name"
    install -m 0644 "$TMP/$name/package/$file" "$DIR/lib/$out"
    install -m 0644 "$TMP/$name/package/LICENSE" "$DIR/lib/$out.LICENSE"
    echo "web-assets.sh: $DIR/lib/$out ($name@$version)"
done
printf '%s\n' "$want" > "$STAMP"
