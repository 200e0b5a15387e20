/** Human-readable counts: 125.49M, 4.089G, 853.0K. */
export function formatCount(x: number): string {
  if (x >= 1e9) return `${(x / 1e9).toFixed(3)}G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}K`;
  return String(Math.round(x));
}
