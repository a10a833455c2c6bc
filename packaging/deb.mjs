// `npm run package:deb`: snapferry as a Debian package, built with dpkg-deb from this checkout (no network).
//
//   /usr/lib/snapferry/          package.json, bin/snapferry.js, dist/ (npm run build) and node_modules/ with the
//                                files the runtime dependencies load and their licenses (runtime-files.mjs): the
//                                native addons, as built here for this machine's node and architecture (so the
//                                package is Architecture: this machine's), without their build tree
//   /usr/bin/snapferry           a link to /usr/lib/snapferry/bin/snapferry.js
//   /usr/lib/systemd/system/     the units of deploy/systemd, their ExecStart naming /usr/bin/snapferry; the
//                                maintainer scripts (maintainer-scripts.mjs) stop them on remove, restart them after
//                                an upgrade, and clean up their enabled links
//   /usr/share/doc/snapferry/    README.md, the bundled packages' licenses, copyright
//   /usr/share/snapferry/examples/  the example configs and the nginx site the README's steps copy: not under
//                                /usr/share/doc, which minimized images (Ubuntu's minimal, Docker's) leave out
//
// Usage: node packaging/deb.mjs [--out DIR]   (default: this checkout's root). Prints the .deb's path.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDist } from './build.mjs';
import { maintainerScripts } from './maintainer-scripts.mjs';
import { runtimeFiles } from './runtime-files.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where the package puts the command, and so what its units run. */
export const INSTALLED_BIN = '/usr/bin/snapferry';
const LIB = 'usr/lib/snapferry';
const UNITS = 'usr/lib/systemd/system';
const DOC = 'usr/share/doc/snapferry';
export const EXAMPLES = 'usr/share/snapferry/examples';
/**
 * What the command runs besides node: btrfs (btrfs-progs), getfattr (attr: the tree digest reads xattrs), flock
 * (util-linux: the root lock).
 */
const TOOLS = ['btrfs-progs', 'attr', 'util-linux'];

/** package.json's `engines.node` (">=20.19") as a Debian dependency on nodejs. */
export function nodeDependency(engines) {
  const m = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(engines?.node ?? '');
  if (!m) throw new Error(`package.json engines.node must read ">=X.Y", found ${JSON.stringify(engines?.node)}`);
  return `nodejs (>= ${m[1]})`;
}

/** A unit of deploy/systemd with every ExecStart (and the like) running the packaged command. */
export function unitFor(text, bin = INSTALLED_BIN) {
  return text.replace(/^(Exec\w+=[-@:+!]*)\S*\/snapferry(?=\s|$)/gm, `$1${bin}`);
}

function control(pkg, arch, installedKb) {
  return [
    'Package: snapferry',
    `Version: ${pkg.version}`,
    `Architecture: ${arch}`,
    // No maintainer is named in package.json yet: set `author` there and it is used here.
    `Maintainer: ${typeof pkg.author === 'string' ? pkg.author : 'snapferry developers <root@localhost>'}`,
    `Installed-Size: ${installedKb}`,
    `Depends: ${[nodeDependency(pkg.engines), ...TOOLS].join(', ')}`,
    'Section: admin',
    'Priority: optional',
    `Description: ${pkg.description.replace(/\.$/, '')}`,
    ' snapferry cuts btrfs send streams into checksummed, compressed frames, uploads them with the',
    ' tus resumable-upload protocol, and feeds verified frames to btrfs receive on the server.',
    ' Units: snapferry-server.service, snapferry-client.service and .timer (not enabled).',
    '',
  ].join('\n');
}

function duKb(dir) {
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return Math.ceil(bytes / 1024);
}

export async function buildDeb(root = ROOT, outDir = root) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const dist = await buildDist(root);
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  fs.mkdirSync(path.join(root, '.tmp'), { recursive: true });
  const stage = fs.mkdtempSync(path.join(root, '.tmp', 'deb-'));
  try {
    fs.chmodSync(stage, 0o755);
    const lib = path.join(stage, LIB);
    fs.mkdirSync(path.join(lib, 'bin'), { recursive: true });
    fs.copyFileSync(path.join(root, 'package.json'), path.join(lib, 'package.json'));
    fs.copyFileSync(path.join(root, 'bin', 'snapferry.js'), path.join(lib, 'bin', 'snapferry.js'));
    fs.chmodSync(path.join(lib, 'bin', 'snapferry.js'), 0o755);
    fs.cpSync(dist, path.join(lib, 'dist'), { recursive: true });
    for (const file of runtimeFiles(root)) {
      fs.mkdirSync(path.join(lib, 'node_modules', path.dirname(file)), { recursive: true });
      fs.copyFileSync(path.join(root, 'node_modules', file), path.join(lib, 'node_modules', file));
    }

    fs.mkdirSync(path.join(stage, path.dirname(INSTALLED_BIN)), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(INSTALLED_BIN), `/${LIB}/bin/snapferry.js`), path.join(stage, INSTALLED_BIN));

    fs.mkdirSync(path.join(stage, UNITS), { recursive: true });
    const units = {};
    for (const name of fs.readdirSync(path.join(root, 'deploy', 'systemd'))) {
      units[name] = unitFor(fs.readFileSync(path.join(root, 'deploy', 'systemd', name), 'utf8'));
      fs.writeFileSync(path.join(stage, UNITS, name), units[name]);
    }

    const doc = path.join(stage, DOC);
    fs.mkdirSync(doc, { recursive: true });
    const examples = path.join(stage, EXAMPLES);
    fs.mkdirSync(examples, { recursive: true });
    fs.copyFileSync(path.join(root, 'README.md'), path.join(doc, 'README.md'));
    fs.copyFileSync(path.join(dist, 'THIRD-PARTY-LICENSES.md'), path.join(doc, 'THIRD-PARTY-LICENSES.md'));
    for (const name of fs.readdirSync(path.join(root, 'deploy')).filter((n) => n.endsWith('.yaml'))) {
      fs.copyFileSync(path.join(root, 'deploy', name), path.join(examples, name));
    }
    // The nginx site the README's HTTPS steps copy: there is no clone to copy it from on a machine with the package.
    fs.copyFileSync(path.join(root, 'nginx', 'snapferry.conf'), path.join(examples, 'nginx-snapferry.conf'));
    fs.writeFileSync(
      path.join(doc, 'copyright'),
      `snapferry ${pkg.version}\nLicense: ${pkg.license}\nThe licenses of the packages bundled into dist/: THIRD-PARTY-LICENSES.md\n\n${fs.readFileSync(path.join(root, 'LICENSE'), 'utf8')}`,
    );

    const debian = path.join(stage, 'DEBIAN');
    fs.mkdirSync(debian);
    fs.writeFileSync(path.join(debian, 'control'), control(pkg, arch, duKb(stage)));
    for (const [script, text] of Object.entries(maintainerScripts(units))) fs.writeFileSync(path.join(debian, script), text, { mode: 0o755 });

    fs.mkdirSync(outDir, { recursive: true });
    const out = path.join(outDir, `snapferry_${pkg.version}_${arch}.deb`);
    // gzip: every dpkg reads it, and it is quick (xz took several times as long for ~1 MB less).
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', stage, out], { stdio: ['ignore', 'ignore', 'inherit'] });
    return out;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  console.log(await buildDeb(ROOT, i > 0 ? path.resolve(process.argv[i + 1]) : ROOT));
}
