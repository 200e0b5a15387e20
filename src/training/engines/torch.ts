/** The torch engine: the libtorch Node-API addon (native/), when it was built at install. */
import type { Engine } from '../engine.js';

export type TorchStart = { ok: true; engine: Engine; detail: string } | { ok: false; detail: string };

export function startTorch(_threads: number): TorchStart {
  return { ok: false, detail: 'the torch addon is not built (install libtorch-dev, then npm install)' };
}

/** Whether the addon file exists (the coordinator decides a campaign's engine without loading it). */
export function torchAddonBuilt(): boolean {
  return false;
}
