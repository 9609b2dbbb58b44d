/**
 * The CIFAR-10 and CIFAR-100 binary releases (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
 * the "binary version" files), as downloaded (`cifar-10-binary.tar.gz`, `cifar-100-binary.tar.gz`) or extracted.
 *
 * - CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` (train, in that order) and `test_batch.bin`; each record is
 *   1 label byte then 3,072 pixel bytes; class names in `batches.meta.txt`.
 * - CIFAR-100: `train.bin` and `test.bin`; each record is a coarse label byte (20 superclasses), a fine label byte
 *   (100 classes), then 3,072 pixel bytes; names in `coarse_label_names.txt` and `fine_label_names.txt`.
 *
 * Pixels are stored channel-major (1,024 red, then green, then blue, each row-major 32×32); they come out NHWC.
 */
import { gunzipSync } from 'node:zlib';

import { parseTar } from 'nanotar';

import { checkLabels, DatasetFormatError, type ImageSplit, type ImageSplits } from './types.js';

export type CifarVariant = 'cifar-10' | 'cifar-100';

export interface CifarOptions {
  /** Which release; found from the file names when absent. */
  variant?: CifarVariant;
  /** CIFAR-100's label set: the 100 fine classes (default) or the 20 coarse superclasses. */
  labels?: 'fine' | 'coarse';
}

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;

const LAYOUT = {
  'cifar-10': {
    train: [
      'data_batch_1.bin',
      'data_batch_2.bin',
      'data_batch_3.bin',
      'data_batch_4.bin',
      'data_batch_5.bin',
    ],
    test: ['test_batch.bin'],
    labelBytes: 1,
  },
  'cifar-100': { train: ['train.bin'], test: ['test.bin'], labelBytes: 2 },
} as const;

/** The records of one .bin file: NHWC pixels and the chosen label byte of each. */
export function parseCifarRecords(
  bytes: Uint8Array,
  file: string,
  layout: { labelBytes: 1 | 2; labelIndex: 0 | 1; classes: number },
): ImageSplit {
  const record = layout.labelBytes + PIXELS;
  if (bytes.length === 0 || bytes.length % record !== 0)
    throw new DatasetFormatError(
      file,
      `${bytes.length} bytes is not a whole number of ${record}-byte records (${layout.labelBytes} label byte${layout.labelBytes > 1 ? 's' : ''} + 3,072 pixels): truncated, or not this release's file`,
    );
  const n = bytes.length / record;
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  const plane = SIDE * SIDE;
  for (let i = 0; i < n; i++) {
    const src = i * record;
    labels[i] = bytes[src + layout.labelIndex] as number;
    const from = src + layout.labelBytes;
    const to = i * PIXELS;
    for (let p = 0; p < plane; p++) {
      pixels[to + 3 * p] = bytes[from + p] as number;
      pixels[to + 3 * p + 1] = bytes[from + plane + p] as number;
      pixels[to + 3 * p + 2] = bytes[from + 2 * plane + p] as number;
    }
  }
  checkLabels(labels, layout.classes, file);
  return { pixels, labels, shape: [n, SIDE, SIDE, 3], classes: layout.classes };
}

function concat(parts: ImageSplit[]): ImageSplit {
  const n = parts.reduce((a, p) => a + p.shape[0], 0);
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    pixels.set(p.pixels, at * PIXELS);
    labels.set(p.labels, at);
    at += p.shape[0];
  }
  return { pixels, labels, shape: [n, SIDE, SIDE, 3], classes: parts[0]?.classes ?? 0 };
}

const names = (text: Uint8Array | undefined) =>
  text
    ? new TextDecoder()
        .decode(text)
        .split(/\r?\n/)
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    : undefined;

/**
 * Both splits from the release's files, by base name (a folder's or an archive's entries); `source` names where
 * they came from in errors.
 */
export function cifarFromFiles(
  files: ReadonlyMap<string, Uint8Array>,
  source: string,
  opts: CifarOptions = {},
): ImageSplits {
  const variant: CifarVariant | undefined =
    opts.variant ??
    (files.has('data_batch_1.bin') ? 'cifar-10' : files.has('train.bin') ? 'cifar-100' : undefined);
  if (!variant)
    throw new DatasetFormatError(
      source,
      `neither CIFAR-10's data_batch_1.bin nor CIFAR-100's train.bin is there (found: ${[...files.keys()].join(', ') || 'nothing'})`,
    );
  if (opts.labels === 'coarse' && variant !== 'cifar-100')
    throw new DatasetFormatError(source, 'coarse labels exist only in CIFAR-100');
  const layout = LAYOUT[variant];
  const coarse = variant === 'cifar-100' && opts.labels === 'coarse';
  const parse = (list: readonly string[]) =>
    concat(
      list.map((name) => {
        const bytes = files.get(name);
        if (!bytes) throw new DatasetFormatError(source, `${variant}'s ${name} is missing`);
        return parseCifarRecords(bytes, `${source}/${name}`, {
          labelBytes: layout.labelBytes,
          labelIndex: variant === 'cifar-100' && !coarse ? 1 : 0,
          classes: variant === 'cifar-10' ? 10 : coarse ? 20 : 100,
        });
      }),
    );
  const classNames = names(
    files.get(
      variant === 'cifar-10'
        ? 'batches.meta.txt'
        : coarse
          ? 'coarse_label_names.txt'
          : 'fine_label_names.txt',
    ),
  );
  const train = parse(layout.train);
  const test = parse(layout.test);
  if (classNames && classNames.length !== train.classes)
    throw new DatasetFormatError(source, `${classNames.length} class names for ${train.classes} classes`);
  return { train, test, ...(classNames ? { classNames } : {}) };
}

/** Both splits from the release as downloaded: a .tar.gz (or an uncompressed .tar) of its folder. */
export function cifarFromArchive(bytes: Uint8Array, file: string, opts: CifarOptions = {}): ImageSplits {
  let tar: Uint8Array = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      tar = gunzipSync(bytes);
    } catch (e) {
      throw new DatasetFormatError(file, `the gzip stream is damaged or truncated (${(e as Error).message})`);
    }
  }
  // nanotar reads `data.buffer` from its start: hand it a view that is its whole buffer.
  if (tar.byteOffset !== 0 || tar.byteLength !== tar.buffer.byteLength) tar = tar.slice();
  let entries: ReturnType<typeof parseTar>;
  try {
    entries = parseTar(tar);
  } catch (e) {
    throw new DatasetFormatError(file, `the tar archive is damaged or truncated (${(e as Error).message})`);
  }
  const files = new Map<string, Uint8Array>();
  for (const entry of entries) {
    if (entry.type !== 'file' || !('data' in entry) || !entry.data) continue;
    if (entry.data.length !== entry.size)
      throw new DatasetFormatError(file, `${entry.name} is cut short: the archive is truncated`);
    files.set(entry.name.split('/').pop() as string, entry.data);
  }
  return cifarFromFiles(files, file, opts);
}
