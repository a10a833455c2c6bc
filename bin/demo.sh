#!/usr/bin/env bash
# snapferry demo: two btrfs filesystems on loop files (a "client" and a "server"), a real server on loopback with a
# client token, and between them a slow link (the test suite's chaos proxy, 4 MiB/s) that is cut twice during the
# full seed. The push resumes by itself each time; then an incremental goes the same way, `status` shows what the
# server holds, and every snapshot is checked file by file. Needs root (loop devices, mount, btrfs).
# Run from the repository: `sudo npm run demo` (after `npm ci`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "the demo needs root (loop devices and btrfs): run it with sudo" >&2; exit 1; }
for tool in btrfs mkfs.btrfs losetup; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install btrfs-progs util-linux" >&2; exit 1; }
done

work=$(mktemp -d /tmp/snapferry-demo-XXXXXX)
server_pid=""
proxy_pid=""
cleanup() {
  for pid in $proxy_pid $server_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
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
head -c 40M /dev/urandom > "$work/client/home/photo.raw"
seq 1 400000 > "$work/client/home/notes.txt"
btrfs -q subvolume snapshot -r "$work/client/home" "$work/client/snaps/home.1"

say "server: a client token, then snapferry serve --root $work/server/root --tokens $work/tokens.json"
snapferry client add laptop --tokens "$work/tokens.json" --token-file "$work/laptop.token"
echo "token for client 'laptop' written to $work/laptop.token (shown once, kept in a file, never on a command line)"
node bin/snapferry.js serve --root "$work/server/root" --listen 127.0.0.1:0 --tokens "$work/tokens.json" 2> "$work/server.log" &
server_pid=$!
direct=""
for _ in $(seq 1 100); do
  direct=$(grep -o 'on http://[0-9.:]*' "$work/server.log" | head -1 | cut -c4-) && [ -n "$direct" ] && break
  sleep 0.1
done
[ -n "$direct" ] || { cat "$work/server.log"; exit 1; }
echo "listening on $direct"

say "a slow link that breaks: 4 MiB/s, cut after every 12 MiB, twice"
node --import tsx test/chaos/run-proxy.ts --target "${direct#http://}" --rate 4M --cut-every 12M --cuts 2 > "$work/proxy.out" &
proxy_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(grep -o 'http://[0-9.:]*' "$work/proxy.out" | head -1) && [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the chaos proxy did not start" >&2; exit 1; }
echo "the client talks to $url"

say "push the first snapshot (full) through the link: it is cut twice and resumes from the server's offset"
snapferry push --server "$url" --token-file "$work/laptop.token" --volume home "$work/client/snaps/home.1"

say "change files (edit, delete, rename, add) and push a second snapshot (incremental)"
echo "more notes" >> "$work/client/home/notes.txt"
rm -r "$work/client/home/code/dist/cjs"
mv "$work/client/home/photo.raw" "$work/client/home/photo-renamed.raw"
head -c 5M /dev/urandom > "$work/client/home/new.bin"
btrfs -q subvolume snapshot -r "$work/client/home" "$work/client/snaps/home.2"
snapferry push --server "$url" --token-file "$work/laptop.token" --volume home "$work/client/snaps"

say "what the server holds"
snapferry status --server "$url" --token-file "$work/laptop.token"

say "verify: the server's copy equals the snapshot, proved by tree digests (only digests cross the line)"
snapferry verify --server "$url" --token-file "$work/laptop.token" --volume home --digest-cache "$work/digests" "$work/client/snaps/home.2"

say "check by hand: the received snapshots equal the sent ones"
for s in home.1 home.2; do
  received="$work/server/root/volumes/laptop/home/$s"
  diff -r "$work/client/snaps/$s" "$received" >/dev/null && echo "$s: identical, $(btrfs property get -ts "$received" ro)"
  btrfs subvolume show "$received" | grep -E 'Received UUID'
done
say "done"
