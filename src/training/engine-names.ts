/** The engine names every entry point accepts (CLI flags, campaign files, stores, queue workers): the one list. */

/** Engines a trial can train on. */
export const ENGINE_NAMES = ['torch', 'tensorflow', 'wasm', 'cpu'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** What a user may ask for: an engine, or 'auto' (torch, else tensorflow, else wasm, else cpu). */
export const ENGINE_CHOICES = ['auto', ...ENGINE_NAMES] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** Engines that run a trial in a child process of its own (native code is not proven safe in worker threads). */
export const NATIVE_ENGINES: ReadonlySet<string> = new Set<EngineName>(['tensorflow', 'torch']);

export function isEngineName(name: string): name is EngineName {
  return (ENGINE_NAMES as readonly string[]).includes(name);
}
