/** Files of installed npm packages (browser bundles, wasm binaries), read from node_modules: nothing from the network. */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The root folder of an installed package (the one whose package.json names it). */
export function packageDir(pkg: string): string {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(pkg));
  while (!existsSync(join(dir, 'package.json')) || (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name !== pkg) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the ${pkg} package`);
    dir = up;
  }
  return dir;
}

/** One file of an installed package. */
export function packageFile(pkg: string, file: string): Buffer {
  return readFileSync(join(packageDir(pkg), file));
}
