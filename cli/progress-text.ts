// Progress as plain text, for where a live bar cannot redraw (`lth status`, logs, pipes): a static bar in
// cli-progress's shades_classic style and one line per level being trained.
import { type LevelProgressUpdate } from '../contract/lottery';
import { formatAccuracyPct } from '../report/table';

/** `██████░░░░░░  40%` */
export function textBar(value: number, total: number, width = 24): string {
  const f = total > 0 ? Math.min(1, Math.max(0, value / total)) : 0;
  const full = Math.round(f * width);
  return `${'\u2588'.repeat(full)}${'\u2591'.repeat(width - full)} ${String(Math.round(f * 100)).padStart(3)}%`;
}

/** `level  2 ██████░░░░░░  40% | step 120/300 | loss 0.1234 | test acc 91.20%` */
export function progressLine(p: LevelProgressUpdate): string {
  const loss = p.loss === null ? '-' : p.loss.toFixed(4);
  const acc = p.testAccuracy === null ? '-' : `${formatAccuracyPct(p.testAccuracy)}%`;
  return `level ${String(p.level).padStart(2)} ${textBar(p.step, p.totalSteps)} | step ${p.step}/${p.totalSteps} | loss ${loss} | test acc ${acc}`;
}
