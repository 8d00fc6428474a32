#!/usr/bin/env node
// Builds the tiny test guest: a Debian kernel and a busybox initramfs whose /init
// (guest-image/init.sh) talks on the serial console. See `--help`.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { cpioNewc } from './guest-image/cpio.mjs';
import { resolveModules } from './guest-image/kmod.mjs';
import { extractPvhKernel } from './guest-image/vmlinux.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const recipeFiles = [fileURLToPath(import.meta.url), join(here, 'guest-image/cpio.mjs'), join(here, 'guest-image/kmod.mjs'), join(here, 'guest-image/vmlinux.mjs'), join(here, 'guest-image/init.sh')];

/** What the guest loads: virtio disks, NICs and balloon on PCI(e), CD drives on virtio-scsi, the
 * ACPI power button (and evdev to read it), pvpanic. Not AHCI: probing q35's six empty SATA ports
 * costs half a second of boot under TCG, and a CD on virtio-scsi has a tray and can be hot-plugged. */
const WANTED_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_balloon', 'virtio_scsi', 'sr_mod', 'button', 'evdev'];
/** pvpanic's drivers were split into pvpanic-mmio (the ISA/ACPI device) and pvpanic-pci in 5.x. */
const OPTIONAL_MODULES = ['pvpanic', 'pvpanic_mmio', 'pvpanic_pci'];
const CMDLINE = 'console=ttyS0 quiet';

const usage = `Usage: npm run guest-image -- [--out DIR] [--refresh]

Builds the tiny guest used by the QEMU tests: Debian's kernel (linux-image-amd64) and an
initramfs with busybox-static and the virtio, ACPI button and pvpanic modules. Packages are
fetched with 'apt-get download' and unpacked with 'dpkg-deb -x' (nothing is installed).

  --out DIR   where to build and cache (default: $XENOPS_GUEST_IMAGE_DIR, else .cache/guest-image
              at the repository root; the tests look in the same place)
  --refresh   rebuild even if a cached image was built by this recipe (picks up new packages)
  --help      this text

Boot it with: qemu-system-x86_64 -M q35 -accel tcg -m 128 -nographic \\
  -kernel <kernel> -initrd <initrd> -append '${CMDLINE}'
On the serial console the guest prints 'xenops-guest ready', then 'xenops-guest heartbeat <n>'
every second, and obeys the lines lsblk, lsnet, reboot, poweroff, panic.
The last two lines printed are 'kernel: <path>' and 'initrd: <path>'.`;

class GuestImageError extends Error {
  constructor(message, options) { super(message, options); this.name = 'GuestImageError'; }
}

function parseArgs(argv) {
  const opts = { out: process.env.XENOPS_GUEST_IMAGE_DIR || join(root, '.cache/guest-image'), refresh: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { console.log(usage); process.exit(0); }
    else if (a === '--refresh') opts.refresh = true;
    else if (a === '--out' || a.startsWith('--out=')) {
      const v = a === '--out' ? argv[++i] : a.slice('--out='.length);
      if (!v) throw new GuestImageError('--out needs a directory');
      opts.out = resolve(v);
    } else throw new GuestImageError(`unknown argument ${JSON.stringify(a)} (see --help)`);
  }
  return opts;
}

function run(cmd, args, { cwd, what }) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new GuestImageError(`${what}: cannot run ${cmd}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) {
    const output = `${r.stderr}\n${r.stdout}`.trim().split('\n').filter((l) => !/^W: Download is performed unsandboxed/.test(l)).slice(-8).join('\n');
    throw new GuestImageError(`${what} failed (${cmd} ${args.join(' ')}, exit ${r.status ?? r.signal}):\n${output}`);
  }
  return r.stdout;
}

function requireTool(name) {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0) {
    throw new GuestImageError(`'${name}' is not available: the guest image is built from Debian packages and needs apt-get and dpkg-deb (a Debian or Ubuntu host)`);
  }
}

function download(packages, dir) {
  // As root apt would drop to the _apt user, which cannot write into our cache directory.
  const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
  try {
    run('apt-get', ['download', '-q', ...sandbox, ...packages], { cwd: dir, what: `apt-get download ${packages.join(' ')}` });
  } catch (e) {
    throw new GuestImageError(`${e.message}\nCannot download the guest's packages. apt-get needs its package lists ('apt-get update', as root) and access to a Debian mirror.`, { cause: e });
  }
}

/** The one .deb of `pkg` in `dir` (the staging directory is fresh, so there is exactly one). */
function debOf(dir, pkg) {
  const found = readdirSync(dir).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (found.length !== 1) throw new GuestImageError(`expected one ${pkg}_*.deb in ${dir}, found ${found.length}`);
  return join(dir, found[0]);
}

const field = (deb, name) => run('dpkg-deb', ['-f', deb, name], { what: `reading ${name} of ${deb}` }).trim();

/** The versioned kernel package the metapackage stands for, e.g. linux-image-6.1.0-57-amd64=6.1.192-3. */
function kernelPackageOf(metaDeb) {
  const depends = field(metaDeb, 'Depends');
  const m = /(?:^|,\s*)(linux-image-[0-9][^\s,(]*)\s*(?:\(=\s*([^)\s]+)\))?/.exec(depends);
  if (!m) throw new GuestImageError(`linux-image-amd64 depends on no versioned kernel package (Depends: ${depends})`);
  return { name: m[1], version: m[2] };
}

function recipeHash() {
  const h = createHash('sha256');
  for (const f of recipeFiles) h.update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

function cached(out, recipe) {
  try {
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    if (manifest.recipe === recipe && existsSync(join(out, manifest.kernel)) && existsSync(join(out, manifest.initrd))) return manifest;
  } catch { /* nothing usable cached */ }
  return undefined;
}

function build(out, recipe) {
  requireTool('apt-get');
  requireTool('dpkg-deb');
  const work = join(out, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    console.log('downloading linux-image-amd64 and busybox-static (apt-get download)');
    download(['linux-image-amd64', 'busybox-static'], work);
    const kernelPkg = kernelPackageOf(debOf(work, 'linux-image-amd64'));
    const kernelSpec = kernelPkg.version ? `${kernelPkg.name}=${kernelPkg.version}` : kernelPkg.name;
    console.log(`downloading ${kernelSpec}`);
    download([kernelSpec], work);
    const kernelDeb = debOf(work, kernelPkg.name);
    const busyboxDeb = debOf(work, 'busybox-static');

    console.log('unpacking (dpkg-deb -x)');
    const kernelTree = join(work, 'kernel');
    const busyboxTree = join(work, 'busybox');
    run('dpkg-deb', ['-x', kernelDeb, kernelTree], { what: 'unpacking the kernel package' });
    run('dpkg-deb', ['-x', busyboxDeb, busyboxTree], { what: 'unpacking busybox-static' });

    const versions = readdirSync(join(kernelTree, 'lib/modules'));
    if (versions.length !== 1) throw new GuestImageError(`expected one kernel version under lib/modules, found ${versions.join(', ') || 'none'}`);
    const kver = versions[0];
    const vmlinuz = join(kernelTree, 'boot', `vmlinuz-${kver}`);
    if (!existsSync(vmlinuz)) throw new GuestImageError(`the kernel package has no boot/vmlinuz-${kver}`);
    const busybox = join(busyboxTree, 'bin/busybox');
    if (!existsSync(busybox)) throw new GuestImageError('busybox-static has no bin/busybox');

    // Debian 13 compresses modules with xz; the busybox just unpacked can undo that.
    const load = (path) => {
      if (path.endsWith('.ko')) return readFileSync(path);
      if (path.endsWith('.ko.xz')) return execFileSync(busybox, ['xz', '-dc', path], { maxBuffer: 64 << 20 });
      throw new GuestImageError(`cannot decompress ${path} (only .ko and .ko.xz are handled)`);
    };
    const { modules, missingOptional } = resolveModules({
      modulesDir: join(kernelTree, 'lib/modules', kver), wanted: WANTED_MODULES, optional: OPTIONAL_MODULES, load,
    });
    if (!modules.some((m) => m.name.startsWith('pvpanic'))) throw new GuestImageError(`kernel ${kver} has no pvpanic module`);

    const entries = [
      ...['bin', 'dev', 'etc', 'etc/xenops-guest', 'lib', 'lib/modules', 'proc', 'root', 'sys', 'tmp'].map((path) => ({ type: 'dir', path })),
      { type: 'char', path: 'dev/console', major: 5, minor: 1 },
      { type: 'file', path: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 },
      { type: 'file', path: 'init', data: readFileSync(join(here, 'guest-image/init.sh')), mode: 0o755 },
      { type: 'file', path: 'etc/xenops-guest/modules', data: Buffer.from(modules.map((m) => m.name).join('\n') + '\n') },
      { type: 'file', path: 'etc/xenops-guest/version', data: Buffer.from(`kernel ${kernelPkg.name} ${kernelPkg.version ?? ''}\nbusybox-static ${field(busyboxDeb, 'Version')}\nrecipe ${recipe}\n`) },
      ...modules.map((m) => ({ type: 'file', path: `lib/modules/${m.name}.ko`, data: m.data })),
    ];
    const initrdBytes = gzipSync(cpioNewc(entries), { level: 9 });

    // The uncompressed kernel boots about twice as fast under TCG; the bzImage is the fallback.
    const pvh = extractPvhKernel(readFileSync(vmlinuz));
    if (!pvh.elf) console.log(`using the compressed kernel (slower to boot under TCG): ${pvh.reason}`);
    const kernel = join(out, pvh.elf ? 'vmlinux' : 'vmlinuz');
    const initrd = join(out, 'initrd.gz');
    rmSync(join(out, pvh.elf ? 'vmlinuz' : 'vmlinux'), { force: true });
    if (pvh.elf) writeFileSync(`${kernel}.tmp`, pvh.elf);
    else copyFileSync(vmlinuz, `${kernel}.tmp`);
    writeFileSync(`${initrd}.tmp`, initrdBytes);
    renameSync(`${kernel}.tmp`, kernel);
    renameSync(`${initrd}.tmp`, initrd);
    const manifest = {
      // File names relative to the manifest, so a moved checkout keeps its cache.
      recipe, kernel: basename(kernel), initrd: basename(initrd), cmdline: CMDLINE, kernelRelease: kver, kernelFormat: pvh.elf ? 'elf-pvh' : 'bzImage',
      kernelPackage: `${kernelPkg.name} ${kernelPkg.version ?? ''}`.trim(),
      busyboxPackage: `busybox-static ${field(busyboxDeb, 'Version')}`,
      modules: modules.map((m) => m.name), missingOptionalModules: missingOptional,
      initrdBytes: initrdBytes.length, kernelBytes: statSync(kernel).size,
    };
    writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  } finally {
    // The unpacked kernel package is ~400 MB; the two outputs are all that is kept.
    rmSync(work, { recursive: true, force: true });
  }
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  mkdirSync(opts.out, { recursive: true });
  const recipe = recipeHash();
  const started = Date.now();
  let manifest = opts.refresh ? undefined : cached(opts.out, recipe);
  if (manifest) console.log(`cached guest image (recipe ${recipe}) in ${opts.out}`);
  else {
    manifest = build(opts.out, recipe);
    console.log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s: ${manifest.kernelPackage}, ${manifest.busyboxPackage}`);
    console.log(`modules: ${manifest.modules.join(' ')}`);
  }
  console.log(`initrd size: ${manifest.initrdBytes} bytes, kernel size: ${manifest.kernelBytes} bytes`);
  console.log(`cmdline: ${manifest.cmdline}`);
  console.log(`kernel: ${join(opts.out, manifest.kernel)}`);
  console.log(`initrd: ${join(opts.out, manifest.initrd)}`);
}

try {
  main();
} catch (e) {
  console.error(`guest-image: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
