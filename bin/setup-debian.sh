#!/usr/bin/env bash
# Makes a Debian or Ubuntu machine ready to run snapferry from this checkout, as root: checks that Node.js is recent
# enough (package.json's engines) and says what to install when it is not, installs the Debian packages that are
# missing (after apt-get update), npm only where node came without it, and runs `npm ci` (which builds dist/).
# The README's "Try it" and "Run the tests" run this, and so does .ci/run: CI tries what the README says.
#
#   bin/setup-debian.sh            what the command and the demo need
#   bin/setup-debian.sh --tests    and what the tests drive for real
set -euo pipefail
cd "$(dirname "$0")/.."

# What the command runs: btrfs (btrfs-progs), getfattr (attr), flock, losetup and mount (util-linux, mount).
packages=(btrfs-progs attr util-linux mount)
if [ "${1:-}" = --tests ]; then
  # nginx and openssl (the TLS proxy tests), tinyproxy (the HTTPS_PROXY test's CONNECT proxy), zstd (baselines),
  # curl (API tests), openssh-server/-client (the bench's ssh baseline and its test), iproute2 (ip, tc, ss: the
  # shaped, silenceable line of test/fixtures/shaped-line.ts), systemd (systemd-analyze verifies the units),
  # ceph-mon, ceph-osd, ceph-mgr, radosgw and ceph-common (the real S3 server of test/fixtures/s3.ts: Ceph RGW on a
  # one-node, in-memory cluster; about 20 s to install, without its recommends).
  packages+=(nginx openssl tinyproxy zstd curl openssh-server openssh-client iproute2 systemd
    ceph-mon ceph-osd ceph-mgr radosgw ceph-common)
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--tests]" >&2
  exit 2
fi

say() { printf 'setup-debian: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "run it as root (it installs Debian packages; snapferry itself needs root for btrfs)"; exit 1; }

# ">=20.19" in package.json's engines.node.
required=$(sed -n 's/^ *"node": *">= *\([0-9.]*\)".*/\1/p' package.json)
[ -n "$required" ] || { say "package.json has no engines.node of the form \">=X.Y\""; exit 1; }
too_old() {
  say "snapferry needs Node.js $required or later; $1."
  say "Install a newer one from NodeSource (it brings npm; do not install Debian's npm beside it):"
  say "  curl -fsSL https://deb.nodesource.com/setup_22.x | bash - && apt-get install -y nodejs"
  say "or from https://nodejs.org, then run this again."
  exit 1
}

export DEBIAN_FRONTEND=noninteractive
updated=""
apt_install() {
  [ -n "$updated" ] || { apt-get update -qq; updated=1; }
  apt-get install -y -qq --no-install-recommends "$@"
}

if command -v node >/dev/null; then
  have=$(node -p process.versions.node)
  dpkg --compare-versions "$have" ge "$required" || too_old "this machine has $have ($(command -v node))"
else
  # No node: Debian's own nodejs will do where it is new enough (Debian 13 has 20.19; Debian 12 and Ubuntu 24.04
  # have 18).
  apt-get update -qq
  updated=1
  candidate=$(apt-cache policy nodejs | sed -n 's/^ *Candidate: *//p')
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then too_old "Node.js is not installed and apt has no nodejs package"; fi
  dpkg --compare-versions "${candidate%%[~+-]*}" ge "$required" || too_old "Node.js is not installed and apt's nodejs is ${candidate%%[~+-]*}"
  apt_install nodejs
fi
# NodeSource's nodejs brings npm (and conflicts with Debian's npm); Debian's does not.
command -v npm >/dev/null || apt_install npm

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# The lock file decides every version; `prepare` builds dist/.
npm ci --no-audit --no-fund
