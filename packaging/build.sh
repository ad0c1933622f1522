#!/bin/sh
# Packages a built board (board/build.sh BOARD) into, per its profile:
#   srsd-VERSION-BOARD.tar.gz        rootfs tarball (every board)
#   srsd_VERSION-1_DEBARCH.deb       when deb_arch is set   (dpkg-deb)
#   srsd-VERSION-1.RPMARCH.rpm       when rpm_arch is set   (rpmbuild)
#   srsd_VERSION-1_IPKARCH.ipk       when ipk_arch is set   (OpenWrt, tar + gzip)
#
#   packaging/build.sh BOARD [OUTDIR]     (default OUTDIR: target/boards/packages)
#
# Input: target/boards/out/BOARD/{srsd,srsd.toml} (or SRSD_BOARD_OUT), and the console's
# player libraries from target/www (or SRSD_WWW), which packaging/web-assets.sh fetches when
# they are missing. Tools: tar, gzip, dpkg-deb (Debian's dpkg), rpmbuild (Debian's rpm), npm
# (web-assets.sh). Files are owned by root in every package.
#
# Metadata: the version, maintainer and homepage are Cargo.toml's [package] `version`, first
# `authors` entry and `homepage` (else `repository`). SRSD_VERSION, SRSD_MAINTAINER ('Name
# <email>') and SRSD_HOMEPAGE override them. Without a homepage the packages have no
# Homepage/URL field; without a maintainer the build stops (a .deb must name one): Cargo.toml
# names no author yet, so a build sets SRSD_MAINTAINER (CI: an `unreleased@srsd.invalid`
# build, .ci/run).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
die() { echo "packaging/build.sh: $*" >&2; exit 1; }

BOARD=${1:-}
[ -n "$BOARD" ] || die "usage: packaging/build.sh BOARD [OUTDIR]"
PROFILE=board/$BOARD.toml
[ -f "$PROFILE" ] || die "no board $BOARD"
OUT=${2:-target/boards/packages}
case "$OUT" in /*) ;; *) OUT=$ROOT/$OUT ;; esac

prop() {
    awk -v k="$1" '
        /^[[:space:]]*\[/ { exit }
        $0 ~ "^[[:space:]]*" k "[[:space:]]*=" {
            sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, ""); gsub(/^"|"$/, ""); print; exit
        }' "$PROFILE"
}
# A string key of Cargo.toml's [package] table; for an array (authors), its first string.
cargo_prop() { # KEY
    awk -v k="$1" '
        /^[[:space:]]*\[/ { pkg = ($0 ~ /^[[:space:]]*\[package\][[:space:]]*(#.*)?$/); next }
        pkg && !found && $0 ~ "^[[:space:]]*" k "[[:space:]]*=" { found = 1; sub(/^[^=]*=/, "") }
        found {
            if (match($0, /"[^"]*"/)) { print substr($0, RSTART + 1, RLENGTH - 2); exit }
            if ($0 ~ /\]/) exit
        }' Cargo.toml
}
# SRSD_VERSION overrides Cargo.toml's version (tests build a newer package to upgrade to).
VERSION=${SRSD_VERSION:-$(cargo_prop version)}
case "$VERSION" in
    [0-9]*) case "$VERSION" in *[!0-9A-Za-z.+~]*) die "bad version '$VERSION'" ;; esac ;;
    *) die "bad version '$VERSION'" ;;
esac
DESC_SHORT="SRS-compatible live streaming server (RTMP, HLS, HTTP-FLV)"
# Maintainer and homepage come from Cargo.toml's [package] authors (the first) and homepage
# (else repository); SRSD_MAINTAINER and SRSD_HOMEPAGE override them for a distributor. No
# homepage: the packages carry no Homepage/URL field (all three formats allow that) rather
# than a made-up one. No maintainer: the build stops, since .deb requires the field.
MAINTAINER=${SRSD_MAINTAINER:-$(cargo_prop authors)}
HOMEPAGE=${SRSD_HOMEPAGE:-$(cargo_prop homepage)}
HOMEPAGE=${HOMEPAGE:-$(cargo_prop repository)}
[ -n "$MAINTAINER" ] || die "no maintainer: Cargo.toml's [package] authors is empty and SRSD_MAINTAINER is not set (SRSD_MAINTAINER='Name <email>': who answers for these packages)"
# One line each, and nothing the sed replacements below would read as syntax.
nl='
'
case "$MAINTAINER" in
    *"$nl"*|*[\|\&\\]*) die "bad maintainer '$MAINTAINER'" ;;
    ?*" <"?*@?*">") ;;
    *) die "bad maintainer '$MAINTAINER': want 'Name <email>'" ;;
esac
case "$HOMEPAGE" in
    ''|https://?*|http://?*) ;;
    *) die "bad homepage '$HOMEPAGE': want an http(s) URL" ;;
esac
case "$HOMEPAGE" in *"$nl"*|*[\|\&\\\ ]*) die "bad homepage '$HOMEPAGE'" ;; esac
IN=${SRSD_BOARD_OUT:-$ROOT/target/boards/out/$BOARD}
[ -f "$IN/srsd" ] && [ -f "$IN/srsd.toml" ] || die "no $IN/srsd or srsd.toml: run board/build.sh $BOARD first"
WWW=${SRSD_WWW:-$ROOT/target/www}
packaging/web-assets.sh "$WWW" >/dev/null || die "no player libraries in $WWW (packaging/web-assets.sh)"
DEB_ARCH=$(prop deb_arch)
RPM_ARCH=$(prop rpm_arch)
IPK_ARCH=$(prop ipk_arch)
# Reproducible: every file gets the commit's time.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH=$EPOCH

mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/srsd-pkg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Deterministic tar of a staged directory: root-owned, sorted, fixed times.
tarball() { # DIR OUTFILE MEMBERS...
    dir=$1 out=$2; shift 2
    (cd "$dir" && tar --owner=0 --group=0 --numeric-owner --sort=name \
        --mtime="@$EPOCH" --format=gnu -cf - "$@") | gzip -9n > "$out"
}

# The common tree: binary, board config, init script, logrotate, log and HLS directories.
stage_common() { # DIR
    d=$1
    install -D -m 0755 "$IN/srsd" "$d/usr/bin/srsd"
    install -D -m 0644 "$IN/srsd.toml" "$d/etc/srsd/srsd.toml"
    install -D -m 0755 init.d/srsd "$d/etc/init.d/srsd"
    install -D -m 0644 rootfs/etc/logrotate.d/srsd "$d/etc/logrotate.d/srsd"
    # The log directory; the .deb/.rpm hand it to their srsd user, as whom the server runs
    # once its ports are bound (`user = "srsd"`, added to their config below).
    install -d -m 0755 "$d/var/log/srsd"
    # The console player's libraries ([console] www = /usr/share/srsd/www by default).
    for f in mpegts.js mpegts.js.LICENSE hls.min.js hls.min.js.LICENSE; do
        install -D -m 0644 "$WWW/lib/$f" "$d/usr/share/srsd/www/lib/$f"
    done
}

# The .deb/.rpm create the srsd system user: their config runs the server as it once the
# ports are bound (a top-level key, so it goes before the first table).
as_srsd_user() { # STAGE
    conf=$1/etc/srsd/srsd.toml
    { printf 'user = "srsd"                    # the packages'"'"' system user (after binding)\n'; cat "$conf"; } > "$conf.new"
    mv "$conf.new" "$conf"
    chmod 0644 "$conf"
    # The log directory then belongs to srsd: logrotate rotates in it as that user (it
    # refuses a directory writable by someone other than root without `su`).
    sed -i 's|^    daily$|    su srsd srsd\n    daily|' "$1/etc/logrotate.d/srsd"
}

# The man page (packaging/man/srsd.1), gzipped reproducibly, for the .deb/.rpm.
stage_man() { # DIR
    install -d -m 0755 "$1/usr/share/man/man1"
    gzip -9n < packaging/man/srsd.1 > "$1/usr/share/man/man1/srsd.1.gz"
    chmod 0644 "$1/usr/share/man/man1/srsd.1.gz"
}

# 1. rootfs tarball: unpacks over a busybox or Debian root (tar xzf ... -C /).
R=$WORK/rootfs
stage_common "$R"
# No ./tmp: unpacked over a root it would reset /tmp's mode and owner; srsd creates its HLS
# directory (/tmp/srsd/html) itself.
tarball "$R" "$OUT/srsd-$VERSION-$BOARD.tar.gz" ./usr ./etc ./var
echo "packaging: $OUT/srsd-$VERSION-$BOARD.tar.gz"

# Shared text.
DESC_LONG=" srsd speaks what SRS (Simple RTMP Server) speaks: publish with OBS or
 ffmpeg over RTMP, play over RTMP, HLS or HTTP-FLV. One static binary for
 small Linux boxes (Raspberry Pi, OpenWrt routers) and for servers; its
 configuration follows SRS."

# 2. .deb
if [ -n "$DEB_ARCH" ]; then
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found: apt-get install dpkg"
    D=$WORK/deb
    stage_common "$D"
    as_srsd_user "$D"
    stage_man "$D"
    install -D -m 0644 packaging/srsd.service "$D/usr/lib/systemd/system/srsd.service"
    install -d -m 0755 "$D/usr/share/doc/srsd" "$D/usr/share/lintian/overrides"
    {
        echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
        echo "Upstream-Name: srsd"
        echo ""
        echo "Files: *"
        echo "Copyright: srsd contributors"
        echo "License: MIT"
        sed 's/^$/./; s/^/ /' LICENSE
        echo ""
        echo "Files: usr/share/srsd/www/lib/*"
        echo "Copyright: the mpegts.js and hls.js authors (npm packages mpegts.js, hls.js)"
        echo "License: Apache-2.0"
        echo " On Debian systems, the full text of the Apache License 2.0 is in"
        echo " /usr/share/common-licenses/Apache-2.0 (and beside each file, FILE.LICENSE)."
    } > "$D/usr/share/doc/srsd/copyright"
    printf 'srsd (%s-1) unstable; urgency=medium\n\n  * Package of srsd %s for the %s board.\n\n -- %s  %s\n' \
        "$VERSION" "$VERSION" "$BOARD" "$MAINTAINER" "$(date -u -R -d "@$EPOCH")" |
        gzip -9n > "$D/usr/share/doc/srsd/changelog.Debian.gz"
    chmod 0644 "$D/usr/share/doc/srsd/copyright" "$D/usr/share/doc/srsd/changelog.Debian.gz"
    install -m 0644 packaging/deb/lintian-overrides "$D/usr/share/lintian/overrides/srsd"
    install -d -m 0755 "$D/DEBIAN"
    size=$(du -sk --exclude=DEBIAN "$D" | cut -f1)
    cat > "$D/DEBIAN/control" <<EOF
Package: srsd
Version: $VERSION-1
Architecture: $DEB_ARCH
Maintainer: $MAINTAINER
Installed-Size: $size
Depends: adduser
Section: video
Priority: optional
${HOMEPAGE:+Homepage: $HOMEPAGE
}Description: $DESC_SHORT
$DESC_LONG
EOF
    printf '/etc/srsd/srsd.toml\n/etc/init.d/srsd\n/etc/logrotate.d/srsd\n' > "$D/DEBIAN/conffiles"
    for s in postinst prerm postrm; do
        install -m 0755 "packaging/deb/$s" "$D/DEBIAN/$s"
    done
    # md5sums of every shipped file (dpkg --verify, debsums), paths relative to /.
    (cd "$D" && find . -path ./DEBIAN -prune -o -type f -print | LC_ALL=C sort |
        sed 's|^\./||' | xargs md5sum) > "$D/DEBIAN/md5sums"
    chmod 0644 "$D/DEBIAN/control" "$D/DEBIAN/conffiles" "$D/DEBIAN/md5sums"
    deb=$OUT/srsd_$VERSION-1_$DEB_ARCH.deb
    dpkg-deb --root-owner-group -Zgzip --build "$D" "$deb" >/dev/null
    echo "packaging: $deb"
fi

# 3. .rpm (rpmbuild packs the prebuilt tree; nothing is compiled or stripped by rpm).
if [ -n "$RPM_ARCH" ]; then
    command -v rpmbuild >/dev/null || die "rpmbuild not found: apt-get install rpm"
    T=$WORK/rpm
    S=$T/stage
    stage_common "$S"
    as_srsd_user "$S"
    stage_man "$S"
    # Red Hat's init script directory.
    install -d -m 0755 "$S/etc/rc.d/init.d"
    mv "$S/etc/init.d/srsd" "$S/etc/rc.d/init.d/srsd"
    rmdir "$S/etc/init.d"
    install -D -m 0644 packaging/srsd.service "$S/usr/lib/systemd/system/srsd.service"
    install -D -m 0644 LICENSE "$S/usr/share/licenses/srsd/LICENSE"
    # No homepage: no URL tag at all.
    if [ -n "$HOMEPAGE" ]; then url_sed="s|@URL@|$HOMEPAGE|g"; else url_sed="/^URL:/d"; fi
    sed -e "s|@VERSION@|$VERSION|g" -e "s|@SUMMARY@|$DESC_SHORT|g" \
        -e "$url_sed" -e "s|@STAGE@|$S|g" \
        -e "s|@PACKAGER@|$MAINTAINER|g" \
        -e "s|@DATE@|$(LC_ALL=C date -u -d "@$EPOCH" '+%a %b %d %Y')|g" \
        packaging/rpm/srsd.spec > "$T/srsd.spec"
    printf '%s\n' "$DESC_LONG" | sed 's/^ //' > "$T/description"
    rpmbuild -bb --quiet --target "$RPM_ARCH-linux" \
        --define "_topdir $T/top" --define "_rpmdir $OUT" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "srsd_description_file $T/description" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        --define "_buildhost reproducible" \
        "$T/srsd.spec" >/dev/null
    echo "packaging: $OUT/srsd-$VERSION-1.$RPM_ARCH.rpm"
fi

# 4. OpenWrt .ipk: a gzipped tar of debian-binary, control.tar.gz and data.tar.gz
#    (what OpenWrt's ipkg-build makes), procd init script, UCI defaults in /etc/config/srsd.
if [ -n "$IPK_ARCH" ]; then
    I=$WORK/ipk
    install -D -m 0755 "$IN/srsd" "$I/data/usr/bin/srsd"
    install -D -m 0644 "$IN/srsd.toml" "$I/data/etc/srsd/srsd.toml"
    install -D -m 0755 packaging/openwrt/srsd.init "$I/data/etc/init.d/srsd"
    install -D -m 0644 packaging/openwrt/srsd.config "$I/data/etc/config/srsd"
    for f in mpegts.js mpegts.js.LICENSE hls.min.js hls.min.js.LICENSE; do
        install -D -m 0644 "$WWW/lib/$f" "$I/data/usr/share/srsd/www/lib/$f"
    done
    install -d -m 0755 "$I/control"
    size=$(du -sb "$I/data" | cut -f1)
    cat > "$I/control/control" <<EOF
Package: srsd
Version: $VERSION-1
Depends: libc
Source: srsd
SourceName: srsd
License: MIT
Section: multimedia
${HOMEPAGE:+URL: $HOMEPAGE
}Maintainer: $MAINTAINER
Architecture: $IPK_ARCH
Installed-Size: $size
Description: $DESC_SHORT
EOF
    printf '/etc/srsd/srsd.toml\n/etc/config/srsd\n' > "$I/control/conffiles"
    install -m 0755 packaging/openwrt/postinst "$I/control/postinst"
    install -m 0755 packaging/openwrt/prerm "$I/control/prerm"
    chmod 0644 "$I/control/control" "$I/control/conffiles"
    printf '2.0\n' > "$I/debian-binary"
    tarball "$I/data" "$I/data.tar.gz" .
    tarball "$I/control" "$I/control.tar.gz" .
    ipk=$OUT/srsd_$VERSION-1_$IPK_ARCH.ipk
    tarball "$I" "$ipk" ./debian-binary ./data.tar.gz ./control.tar.gz
    echo "packaging: $ipk"
fi
