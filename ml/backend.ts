/**
 * Chooses the TF.js backend for this process.
 *
 * Preference for 'auto': @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node, @tensorflow/tfjs-backend-wasm, then the
 * plain JS cpu backend. The native packages are optional (not dependencies: their install step downloads
 * libtensorflow, which this project's machines cannot), so they are loaded with a guarded require and their
 * absence just moves 'auto' on to the next choice. A backend asked for by name must load or we throw: a worker
 * that silently trained on another backend would produce results that are not comparable.
 *
 * Bit-exactness: each backend computes with its own kernels, so results agree only within one backend. Within
 * the cpu backend and the wasm backend everything is single-threaded and deterministic run to run.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';

import { registerNativeKernels } from './native/kernels.js';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export interface BackendInfo {
  name: BackendName;
  package: string;
  version: string;
  /**
   * Threads the backend computes with: WASM's pool, 1 for cpu, TensorFlow's intra-op pool when it was set
   * (LTH_THREADS or TF_NUM_INTRAOP_THREADS); null where TensorFlow picks its own (one per core).
   */
  threads: number | null;
}

export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
const AUTO_ORDER: readonly BackendName[] = BACKEND_NAMES;

const PACKAGES: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

/** The name under which each package registers itself with tfjs-core (both native packages use 'tensorflow'). */
const TF_NAMES: Record<BackendName, string> = {
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

export class BackendUnavailableError extends Error {
  readonly nonRetryable = true;
  constructor(
    readonly backend: BackendName,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`backend '${backend}' (${PACKAGES[backend]}) is not available: ${reason}`, options);
    this.name = 'BackendUnavailableError';
  }
}

const preferSchema = z.enum(['auto', ...BACKEND_NAMES] as [string, ...string[]]);
const threadsSchema = z
  .string()
  .regex(/^[0-9]+$/, 'must be a positive integer')
  .transform(Number)
  .pipe(z.number().int().min(1, 'must be at least 1').max(1024, 'must be at most 1024'));

export interface BackendRequest {
  prefer: BackendName | 'auto';
  threads?: number;
}

/**
 * Reads LTH_BACKEND and LTH_THREADS. Empty or unset means "not said". Invalid values throw with the variable's
 * name, since a typo there would otherwise silently change which backend runs.
 */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<BackendRequest> {
  const out: Partial<BackendRequest> = {};
  const b = env.LTH_BACKEND?.trim();
  if (b) {
    const r = preferSchema.safeParse(b);
    if (!r.success) {
      throw new Error(`LTH_BACKEND must be one of auto, ${BACKEND_NAMES.join(', ')}; got '${b}'`);
    }
    out.prefer = r.data as BackendName | 'auto';
  }
  const t = env.LTH_THREADS?.trim();
  if (t) {
    const r = threadsSchema.safeParse(t);
    if (!r.success) {
      throw new Error(`LTH_THREADS ${r.error.issues[0]?.message ?? 'is invalid'}; got '${t}'`);
    }
    out.threads = r.data;
  }
  return out;
}

/** Options win over the environment, the environment over the defaults ('auto', backend's own threads). */
export function resolveBackendRequest(
  opts: { prefer?: BackendName | 'auto'; threads?: number } = {},
  env: NodeJS.ProcessEnv = process.env,
): BackendRequest {
  const fromEnv = backendFromEnv(env);
  const prefer = opts.prefer ?? fromEnv.prefer ?? 'auto';
  if (!preferSchema.safeParse(prefer).success) {
    throw new Error(`backend must be one of auto, ${BACKEND_NAMES.join(', ')}; got '${String(prefer)}'`);
  }
  const threads = opts.threads ?? fromEnv.threads;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new Error(`threads must be a positive integer, got ${threads}`);
  }
  return threads === undefined ? { prefer } : { prefer, threads };
}

const requireHere = createRequire(__filename);

let current: BackendInfo | null = null;
/** WASM's thread pool size is fixed when its module is instantiated, i.e. once per process. */
let wasmRequestedThreads: number | null | undefined;

function packageVersion(pkg: string): string {
  try {
    const pj = requireHere(`${pkg}/package.json`) as { version?: unknown };
    return typeof pj.version === 'string' ? pj.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

function isModuleNotFound(e: unknown, pkg: string): boolean {
  const err = e as { code?: unknown; message?: unknown };
  return err.code === 'MODULE_NOT_FOUND' && typeof err.message === 'string' && err.message.includes(pkg);
}

async function activate(tfName: string, backend: BackendName): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(tfName);
  } catch (e) {
    throw new BackendUnavailableError(backend, `initialisation failed: ${(e as Error).message}`, {
      cause: e,
    });
  }
  // setBackend reports a failed init as false (and logs); we turn it into an error with the backend's name.
  if (!ok || tf.getBackend() !== tfName) throw new BackendUnavailableError(backend, 'initialisation failed');
  await tf.ready();
}

/** Where node-pre-gyp looks for the package's addon; null when the package is not installed. */
function nativeAddonPath(pkg: string): string | null {
  let dir: string;
  try {
    dir = path.dirname(requireHere.resolve(`${pkg}/package.json`));
  } catch {
    return null;
  }
  return path.join(dir, 'lib', 'napi-v8', 'tfjs_binding.node');
}

/** TensorFlow reads its intra-op pool size from the environment when its first context is created. */
const INTRAOP_ENV = 'TF_NUM_INTRAOP_THREADS';
const INTEROP_ENV = 'TF_NUM_INTEROP_THREADS';

function intraOpThreadsFromEnv(): number | null {
  const raw = process.env[INTRAOP_ENV]?.trim();
  if (!raw) return null;
  const n = Number(raw);
  return Number.isInteger(n) && n > 0 ? n : null;
}

async function loadNative(
  backend: 'tensorflow-gpu' | 'tensorflow',
  threads: number | undefined,
): Promise<BackendInfo> {
  const pkg = PACKAGES[backend];
  if (threads !== undefined && current?.name === backend && current.threads !== threads) {
    throw new BackendUnavailableError(
      backend,
      `already initialised in this process with threads=${current.threads ?? 'default'}; ` +
        'TensorFlow sizes its thread pool once per process',
    );
  }
  if (threads !== undefined) process.env[INTRAOP_ENV] = String(threads);
  // Graph sessions (ml/native/graph.ts) also run independent kernels side by side on the inter-op pool: as many
  // threads there, so that `threads` stays the number of cores TensorFlow computes on.
  const intra = intraOpThreadsFromEnv();
  if (intra !== null && !process.env[INTEROP_ENV]?.trim()) process.env[INTEROP_ENV] = String(intra);
  if (
    current &&
    current.name !== backend &&
    (current.name === 'tensorflow' || current.name === 'tensorflow-gpu')
  ) {
    throw new BackendUnavailableError(backend, `${PACKAGES[current.name]} is already loaded in this process`);
  }
  // Requiring a package whose addon was never built still registers the tfjs union's kernels and
  // gradients before it throws, which would leave this process with slower gradients on fallback.
  const addon = nativeAddonPath(pkg);
  if (addon !== null && !fs.existsSync(addon)) {
    throw new BackendUnavailableError(
      backend,
      `its native addon is not built (${addon}); run: bash infra/tfjs-native.sh`,
    );
  }
  // TensorFlow logs every oneDNN kernel choice at INFO; keep warnings, unless the user chose a level.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  try {
    requireHere(pkg);
  } catch (e) {
    const reason = isModuleNotFound(e, pkg)
      ? 'package not installed'
      : `loading it failed: ${(e as Error).message.split('\n')[0]}`;
    throw new BackendUnavailableError(backend, reason, { cause: e });
  }
  // The package registers with the tfjs-core it resolves; if that is another copy than ours we cannot use it.
  if (!tf.findBackendFactory('tensorflow')) {
    throw new BackendUnavailableError(
      backend,
      `it registered with a different copy of @tensorflow/tfjs-core than ml/ uses (${tf.version_core}); ` +
        'install versions that dedupe to one tfjs-core',
    );
  }
  const kernels = requireHere(`${pkg}/dist/nodejs_kernel_backend`) as {
    createTensorsTypeOpAttr: Parameters<typeof registerNativeKernels>[0];
  };
  // LTH_NATIVE_KERNELS=off keeps tfjs's composite gradients (to measure what the native ones save).
  if (process.env.LTH_NATIVE_KERNELS !== 'off') registerNativeKernels(kernels.createTensorsTypeOpAttr);
  await activate('tensorflow', backend);
  return { name: backend, package: pkg, version: packageVersion(pkg), threads: intraOpThreadsFromEnv() };
}

async function loadWasm(threads: number | undefined): Promise<BackendInfo> {
  const pkg = PACKAGES.wasm;
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasm = requireHere(pkg) as typeof import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    const reason = isModuleNotFound(e, pkg)
      ? 'package not installed'
      : `loading it failed: ${(e as Error).message}`;
    throw new BackendUnavailableError('wasm', reason, { cause: e });
  }
  const requested = threads ?? null;
  if (wasmRequestedThreads === undefined) {
    // Emscripten reads .wasm files from disk in Node; point it at the package's own dist folder.
    const dist = path.dirname(requireHere.resolve(`${pkg}/dist/tfjs-backend-wasm.wasm`));
    wasm.setWasmPaths(dist + path.sep);
    if (threads !== undefined) wasm.setThreadsCount(threads);
    wasmRequestedThreads = requested;
  } else if (wasmRequestedThreads !== requested) {
    throw new BackendUnavailableError(
      'wasm',
      `already initialised in this process with threads=${wasmRequestedThreads ?? 'default'}; ` +
        `the thread count cannot change (asked for ${requested ?? 'default'}): start a new process`,
    );
  }
  await activate('wasm', 'wasm');
  return { name: 'wasm', package: pkg, version: packageVersion(pkg), threads: wasm.getThreadsCount() };
}

async function loadCpu(): Promise<BackendInfo> {
  const pkg = PACKAGES.cpu;
  try {
    requireHere(pkg);
  } catch (e) {
    throw new BackendUnavailableError('cpu', `loading it failed: ${(e as Error).message}`, { cause: e });
  }
  await activate('cpu', 'cpu');
  // The JS cpu backend runs every kernel on the main thread.
  return { name: 'cpu', package: pkg, version: packageVersion(pkg), threads: 1 };
}

async function load(name: BackendName, threads: number | undefined): Promise<BackendInfo> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow':
      return loadNative(name, threads);
    case 'wasm':
      return loadWasm(threads);
    case 'cpu':
      return loadCpu();
  }
}

/**
 * Selects and initialises the backend (see the module comment for the order). Returns what was chosen; the same
 * information is logged and should be recorded with every result.
 */
export async function selectBackend(
  opts: { prefer?: BackendName | 'auto'; threads?: number; log?: (msg: string) => void } = {},
): Promise<BackendInfo> {
  const log = opts.log ?? ((msg: string) => console.log(msg));
  const req = resolveBackendRequest(opts);
  const candidates = req.prefer === 'auto' ? AUTO_ORDER : [req.prefer];
  let chosen: BackendInfo | null = null;
  for (const name of candidates) {
    try {
      chosen = await load(name, req.threads);
      break;
    } catch (e) {
      if (req.prefer !== 'auto') throw e;
      log(`backend: skipping ${name}: ${(e as Error).message}`);
    }
  }
  if (!chosen) throw new Error('backend: no backend could be loaded (not even cpu)');
  if (req.threads !== undefined && chosen.threads !== null && chosen.threads !== req.threads) {
    log(
      `backend: asked for ${req.threads} threads but ${chosen.name} uses ${chosen.threads}` +
        (chosen.name === 'wasm'
          ? ' (tfjs-backend-wasm disables its threaded build under Node.js, tfjs issue #3830)'
          : ''),
    );
  }
  current = chosen;
  log(
    `backend: using ${chosen.name} (${chosen.package}@${chosen.version}` +
      `${chosen.threads !== null ? `, ${chosen.threads} thread${chosen.threads === 1 ? '' : 's'}` : ''})`,
  );
  return { ...chosen };
}

/** The backend chosen by the last successful selectBackend; throws if none was selected. */
export function currentBackend(): BackendInfo {
  if (!current) throw new Error('no backend selected: call selectBackend() first');
  if (tf.getBackend() !== TF_NAMES[current.name]) {
    throw new Error(
      `backend changed behind ml/'s back: selected ${current.name} but tfjs-core is on '${tf.getBackend()}'`,
    );
  }
  return { ...current };
}

/** Tensors the backend holds now and their bytes: flat across a worker's activities unless something leaks. */
export function tensorMemory(): { tensors: number; bytes: number } {
  const m = tf.memory();
  return { tensors: m.numTensors, bytes: m.numBytes };
}
