#!/usr/bin/env bash
# make-busybox-bundle.sh DIR [--config NAME]
#
# Makes (or refreshes) an OCI bundle at DIR from Debian's busybox-static:
#   DIR/rootfs      /bin/busybox + a symlink per applet in /bin;
#                   /sbin -> bin, /usr/bin -> ../bin, /usr/sbin -> ../bin;
#                   /etc/passwd, /etc/group (root, nobody, user 1000:1000);
#                   empty /proc /sys /dev /tmp /root /home ...
#   DIR/config.json with no --config: what `runc spec` prints (or, without
#                   runc, the copy in configs/default.json) with
#                   process.terminal=false and
#                   process.args=["sh","-c","echo hello from runpy-oci"];
#                   with --config NAME: configs/NAME.json (hello, shell,
#                   readonly, sleep, default).
#
# Idempotent (a second run only fixes what is missing or stale) and fast.
# Needs only bash, coreutils and busybox-static (runc optional).
set -euo pipefail

usage() {
    echo "usage: $0 DIR [--config NAME]" >&2
    echo "  NAME is one of: $(cd "$HERE/configs" && ls ./*.json | sed 's|^\./||; s|\.json$||' | tr '\n' ' ')" >&2
    exit 2
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUSYBOX=${BUSYBOX:-/bin/busybox}

dir=""
config=""
while [ $# -gt 0 ]; do
    case "$1" in
        --config) [ $# -ge 2 ] || usage; config=$2; shift 2 ;;
        --config=*) config=${1#--config=}; shift ;;
        -h|--help) usage ;;
        -*) echo "$0: unknown option $1" >&2; usage ;;
        *) [ -z "$dir" ] || usage; dir=$1; shift ;;
    esac
done
[ -n "$dir" ] || usage
if [ -n "$config" ] && [ ! -f "$HERE/configs/$config.json" ]; then
    echo "$0: no such config: $config" >&2
    usage
fi
if [ ! -x "$BUSYBOX" ]; then
    echo "$0: $BUSYBOX not found (apt-get install busybox-static)" >&2
    exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rootfs=$dir/rootfs

# --- directories -----------------------------------------------------------
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,root,etc,home/user,usr,var,run,mnt}
chmod 0755 "$rootfs"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
chown 1000:1000 "$rootfs/home/user"
for l in sbin:bin usr/bin:../bin usr/sbin:../bin; do
    name=${l%%:*} target=${l#*:}
    if [ "$(readlink "$rootfs/$name" 2>/dev/null)" != "$target" ]; then
        rm -rf "${rootfs:?}/$name"
        ln -s "$target" "$rootfs/$name"
    fi
done

# --- busybox and its applets ---------------------------------------------
if ! cmp -s "$BUSYBOX" "$rootfs/bin/busybox"; then
    cp -f "$BUSYBOX" "$rootfs/bin/busybox.tmp"
    chmod 0755 "$rootfs/bin/busybox.tmp"
    mv -f "$rootfs/bin/busybox.tmp" "$rootfs/bin/busybox"
fi
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] && continue
    link=$rootfs/bin/$applet
    # Builtin tests only: a rerun forks nothing for links already in place.
    if [ -L "$link" ]; then
        continue
    fi
    if [ -e "$link" ]; then rm -rf "$link"; fi
    ln -s busybox "$link"
done

# --- users and groups ------------------------------------------------------
write_if_changed() {   # write_if_changed FILE  (content on stdin)
    local content
    content=$(cat)
    if [ ! -f "$1" ] || [ "$(cat "$1")" != "$content" ]; then
        printf '%s\n' "$content" > "$1.tmp"
        mv -f "$1.tmp" "$1"
    fi
}
write_if_changed "$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
write_if_changed "$rootfs/etc/group" <<'EOF'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
EOF

# --- config.json -----------------------------------------------------------
tmp=$dir/.config.json.tmp
if [ -n "$config" ]; then
    cp "$HERE/configs/$config.json" "$tmp"
else
    spec_src=$HERE/configs/default.json
    if runc=$(command -v runc 2>/dev/null) && [ -n "$runc" ]; then
        specdir=$(mktemp -d)
        if (cd "$specdir" && "$runc" spec >/dev/null 2>&1); then
            spec_src=$specdir/config.json
        fi
    fi
    # runc spec's layout is stable: one key per line, tab indented.
    sed -e 's/"terminal": true/"terminal": false/' \
        -e '/"args": \[/,/\]/ s/^\([[:space:]]*\)"sh"$/\1"sh",\n\1"-c",\n\1"echo hello from runpy-oci"/' \
        "$spec_src" > "$tmp"
    [ -z "${specdir:-}" ] || rm -rf "$specdir"
fi
if cmp -s "$tmp" "$dir/config.json"; then
    rm -f "$tmp"
else
    mv -f "$tmp" "$dir/config.json"
fi
