// Text widths for Vega's layout without a canvas. Headless Vega (renderer 'none', no 'canvas'
// package) guesses every string to be 0.8 em per character, about a third too wide for the fonts
// we draw with: legends get wide empty margins and long series names are cut off with an
// ellipsis. Vega lets a caller replace the guess (vl-convert does the same); this one adds up
// the advance widths of DejaVu Sans, the first font the plot asks for, which are wider than
// Liberation Sans / Arial / Helvetica, so a fallback font never overflows the space laid out.

/** Advance widths of U+0020..U+007E in DejaVu Sans (Book), in thousandths of an em. */
const REGULAR = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636,
  636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295,
  295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838,
  500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521,
  392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];
/** The same for DejaVu Sans Bold. */
const BOLD = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696,
  696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372,
  372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838,
  500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595,
  478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];
/** Anything outside printable ASCII: a wide guess, so that it is never cut short. */
const OTHER = 1000;

interface TextItem {
  fontSize?: number | string;
  fontWeight?: number | string;
}

function isBold(weight: number | string | undefined): boolean {
  if (weight === undefined) return false;
  if (typeof weight === 'number') return weight >= 600;
  return weight === 'bold' || weight === 'bolder' || Number(weight) >= 600;
}

/** Width in pixels of `text` as Vega would lay out the text mark `item`. */
export function textWidth(item: TextItem, text: unknown): number {
  const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
  const s = text == null ? '' : String(text).trim();
  if (size <= 0 || s.length === 0) return 0;
  const table = isBold(item.fontWeight) ? BOLD : REGULAR;
  let em = 0;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    em += code >= 32 && code < 127 ? table[code - 32]! : OTHER;
  }
  return (em / 1000) * size;
}

/** Make Vega lay out text with textWidth (a process-wide setting of the vega module). */
export function installTextWidth(vega: object): void {
  const metrics = (vega as { textMetrics?: { width?: unknown } }).textMetrics;
  if (metrics && typeof metrics === 'object') metrics.width = textWidth;
}
