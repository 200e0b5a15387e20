/** Versions recorded with a campaign, so its numbers can be traced to the code and libraries that made them. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TRACKED = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'better-sqlite3', 'piscina'];

function version(path: URL): string | null {
  const file = fileURLToPath(path);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : null;
}

/** prunespace, Node and the installed training libraries (src/ and dist/ sit at the same depth below the root). */
export function packageVersions(): Record<string, string> {
  const root = new URL('../../', import.meta.url);
  const out: Record<string, string> = { prunespace: version(new URL('package.json', root)) ?? 'unknown', node: process.versions.node };
  for (const pkg of TRACKED) {
    const v = version(new URL(`node_modules/${pkg}/package.json`, root));
    if (v) out[pkg] = v;
  }
  return out;
}
