// `npm install` step: builds the libtorch addon with node-gyp when libtorch is found; otherwise says so in one line
// and succeeds (the torch backend is then unavailable and the tfjs backends still work).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch } from './libtorch.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const t = findLibtorch();
if (t.missing) {
  console.log(`prunespace: torch addon skipped: ${t.missing}`);
  process.exit(0);
}

function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const candidates = [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  try {
    candidates.unshift(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  return candidates.find(existsSync);
}

const gyp = nodeGyp();
if (!gyp) {
  console.log('prunespace: torch addon skipped: node-gyp not found (it comes with npm)');
  process.exit(0);
}
// Node's own headers where the node binary's prefix has them (Debian's nodejs, official tarballs), so nothing downloads.
const prefix = join(dirname(process.execPath), '..');
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
console.log(`prunespace: building the torch addon against ${t.source}${t.cuda ? ' (CUDA)' : ''} ...`);
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--release', ...nodedir], { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  // A failed build must not fail the install: the tfjs backends work without it.
  console.log('prunespace: torch addon build failed (see above); --backend torch will be unavailable');
  process.exit(0);
}
console.log('prunespace: torch addon built (native/build/Release/prunespace_torch.node)');
