// The fonts PNG plots are drawn with, shipped as an npm package (DejaVu Sans, Latin subset, regular and bold)
// rather than taken from the system: a headless server without fonts would otherwise get plots with no text at
// all, and two machines with different fonts different pixels. resvg reads TrueType files only, and the package
// ships WOFF2, so each file is unpacked once (wawoff2) into a cache named after its content.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const PLOT_FONT_FAMILY = 'DejaVu Sans';

const WOFF2_FILES = ['dejavu-sans-latin-400-normal.woff2', 'dejavu-sans-latin-700-normal.woff2'];

let cached: Promise<string[]> | null = null;

/** Paths of TrueType files for resvg, unpacked on first use into `cacheDir` (default: under the OS temp dir). */
export function plotFontFiles(cacheDir = path.join(os.tmpdir(), 'lth-fonts')): Promise<string[]> {
  cached ??= unpack(cacheDir).catch((err: unknown) => {
    cached = null;
    throw new Error(`cannot prepare the plot fonts in ${cacheDir}: ${(err as Error).message}`, {
      cause: err,
    });
  });
  return cached;
}

async function unpack(cacheDir: string): Promise<string[]> {
  const { decompress } = await import('wawoff2');
  mkdirSync(cacheDir, { recursive: true });
  const out: string[] = [];
  for (const name of WOFF2_FILES) {
    const woff2 = readFileSync(require.resolve(`@fontsource/dejavu-sans/files/${name}`));
    const digest = createHash('sha256').update(woff2).digest('hex').slice(0, 16);
    const ttf = path.join(cacheDir, `${name.replace(/\.woff2$/, '')}-${digest}.ttf`);
    if (!existsSync(ttf)) {
      // Written whole under another name and renamed, so a concurrent reader never sees half a font.
      const tmp = `${ttf}.${process.pid}.tmp`;
      writeFileSync(tmp, await decompress(woff2));
      renameSync(tmp, ttf);
    }
    out.push(ttf);
  }
  return out;
}
