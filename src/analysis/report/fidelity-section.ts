/** The report's fidelity section: what the diagnostics mean, then the campaign's own values. */
import { fidelityLines, STRUCTURE_FLOOR, type Fidelity } from '../fidelity.js';
import { escapeHtml as esc } from './escape.js';

export function fidelitySection(f: Fidelity, rungs: boolean): string {
  const items = fidelityLines(f).map((l) => `<li${l === f.warning ? ' class="missing"' : ''}>${esc(l)}</li>`).join('');
  return `<p>${rungs ? 'Population statistics (error distributions, ratio, profiles, refinement) use rung 0, where every candidate trained the same budget. ' : ''}` +
    'Seed sd: the spread of validation error between seeds of one configuration (the uniform reference and each finalist), pooled within configuration (one-way ANOVA), with its degrees of freedom. ' +
    'Structure share: 1 − seed variance / population variance at rung 0, the share of the candidates’ spread their configurations explain, with an exact interval from the F distribution of the variance ratio (normal errors). ' +
    `Under ${(100 * STRUCTURE_FLOOR).toFixed(0)}%, ranking candidates at rung 0 is mostly ranking seed noise.` +
    `${rungs ? ' Spearman ρ: how well rung 0 orders the candidates that reached the top rung (Fisher z interval).' : ''}</p>\n<ul>${items}</ul>`;
}
