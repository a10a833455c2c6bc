#!/usr/bin/env bash
# snapferry demo: two btrfs filesystems on loop files (a "client" and a "server"), a real server on loopback, a full
# and an incremental snapshot pushed, then checked file by file. Needs root (loop devices, mount, btrfs).
# Run from the repository: `sudo npm run demo` (after `npm ci`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "the demo needs root (loop devices and btrfs): run it with sudo" >&2; exit 1; }
for tool in btrfs mkfs.btrfs losetup; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install btrfs-progs util-linux" >&2; exit 1; }
done

work=$(mktemp -d /tmp/snapferry-demo-XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  for m in "$work/client" "$work/server"; do mountpoint -q "$m" && umount "$m"; done
  for img in "$work/client.img" "$work/server.img"; do
    for dev in $(losetup -j "$img" -O NAME -n 2>/dev/null); do losetup -d "$dev"; done
  done
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
snapferry() { node bin/snapferry.js "$@"; }

say "two btrfs filesystems on loop files under $work"
for side in client server; do
  truncate -s 1G "$work/$side.img"
  mkfs.btrfs -q "$work/$side.img" >/dev/null
  mkdir "$work/$side"
  mount -o loop "$work/$side.img" "$work/$side"
done

say "client: a subvolume with some data, and a read-only snapshot of it"
btrfs -q subvolume create "$work/client/home"
mkdir "$work/client/snaps"
cp -a node_modules/hono "$work/client/home/code"
head -c 20M /dev/urandom > "$work/client/home/photo.raw"
seq 1 200000 > "$work/client/home/notes.txt"
btrfs -q subvolume snapshot -r "$work/client/home" "$work/client/snaps/home.1"

say "server: snapferry serve --root $work/server/root"
node bin/snapferry.js serve --root "$work/server/root" --listen 127.0.0.1:0 2> "$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(grep -o 'on http://[0-9.:]*' "$work/server.log" | head -1 | cut -c4-) && [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/server.log"; exit 1; }
echo "listening on $url"

say "push the first snapshot (full)"
snapferry push --server "$url" --volume home "$work/client/snaps/home.1"

say "change files (edit, delete, rename, add) and push a second snapshot (incremental)"
echo "more notes" >> "$work/client/home/notes.txt"
rm -r "$work/client/home/code/dist/cjs"
mv "$work/client/home/photo.raw" "$work/client/home/photo-renamed.raw"
head -c 5M /dev/urandom > "$work/client/home/new.bin"
btrfs -q subvolume snapshot -r "$work/client/home" "$work/client/snaps/home.2"
snapferry push --server "$url" --volume home "$work/client/snaps"

say "what the server holds"
snapferry status --server "$url"

say "check: the received snapshots equal the sent ones"
for s in home.1 home.2; do
  received="$work/server/root/volumes/default/home/$s"
  diff -r "$work/client/snaps/$s" "$received" >/dev/null && echo "$s: identical, $(btrfs property get -ts "$received" ro)"
  btrfs subvolume show "$received" | grep -E 'Received UUID'
done
say "done"
