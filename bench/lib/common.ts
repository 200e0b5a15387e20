/** Helpers the benchmarks share (a folder of its own, so `npm run bench` does not run it as a benchmark). */
import { spawnSync } from 'node:child_process';

/** The middle value (the upper one of an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The python that can import torch: PATH's python3 first, then Debian's (python3-torch lives there). */
export function torchPython(): string | undefined {
  for (const py of ['python3', '/usr/bin/python3']) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return undefined;
}
