// The .deb's maintainer scripts for its systemd units, as debhelper's dh_installsystemd writes them for units that
// are not enabled or started at install (--no-enable --no-start, restart after upgrade): a running server must not
// outlive its files (after `dpkg -r` it answered with "Cannot find module .../dist/hash-worker.mjs"), nor keep the
// old code after an upgrade replaced the chunk files under it.
//
// Every systemctl and deb-systemd-invoke call only where systemd runs (/run/systemd/system: not in a container or a
// chroot), every deb-systemd-helper call only where init-system-helpers is installed; none can fail the script.

/** Units with an [Install] section: the ones a `systemctl enable` links, whose links remove and purge clean up. */
function installable(units) {
  return Object.entries(units).filter(([, text]) => /^\[Install\]/m.test(text)).map(([name]) => name);
}

/** The timer first, so that it does not start the client service again while the services stop. */
function inStopOrder(units) {
  return Object.keys(units).sort((a, b) => Number(b.endsWith('.timer')) - Number(a.endsWith('.timer')) || a.localeCompare(b));
}

const HEAD = '#!/bin/sh\nset -e\n';
const SYSTEMD = '[ -d /run/systemd/system ]';
const HELPER = 'command -v deb-systemd-helper >/dev/null';

/** { postinst, prerm, postrm } for the units (file name -> unit text) the package installs. */
export function maintainerScripts(units) {
  const all = inStopOrder(units).join(' ');
  const linked = installable(units).join(' ');
  const postinst = `${HEAD}
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
  # Record the links an enable makes, so that remove and purge find them (deb-systemd-helper's state file).
  if ${HELPER}; then deb-systemd-helper update-state ${linked} >/dev/null || true; fi
  if ${SYSTEMD}; then
    systemctl --system daemon-reload >/dev/null || true
    # An upgrade ("$2": the version it replaced): the files are in place, so what runs restarts on them. A first
    # install starts nothing: the units need a config first, and are enabled by hand.
    if [ -n "$2" ]; then deb-systemd-invoke try-restart ${all} >/dev/null || true; fi
  fi
fi
`;
  const prerm = `${HEAD}
# Removed (not upgraded): stop what runs from the files about to go. An upgrade restarts in postinst instead.
if [ -z "\${DPKG_ROOT:-}" ] && [ "$1" = remove ] && ${SYSTEMD}; then
  deb-systemd-invoke stop ${all} >/dev/null || true
fi
`;
  const postrm = `${HEAD}
# Remove: no enabled links left pointing at units that are gone. Purge: deb-systemd-helper's state of them too.
if [ "$1" = remove ] && ${HELPER}; then deb-systemd-helper disable ${linked} >/dev/null || true; fi
if [ "$1" = purge ] && ${HELPER}; then deb-systemd-helper purge ${linked} >/dev/null || true; fi
if [ "$1" = remove ] && ${SYSTEMD}; then systemctl --system daemon-reload >/dev/null || true; fi
`;
  return { postinst, prerm, postrm };
}
