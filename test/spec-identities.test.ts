// Ids and keys derived from specs are the addresses of stored artifacts and running workflows: a refactor that
// changes one orphans what users have. The recorded values (test/fixtures/identities.json) were computed before
// the contract/registry refactor; regenerate them only for a change that means to move artifacts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { computeIdentities, REPO } from './support/identities';

const recorded = JSON.parse(
  fs.readFileSync(path.join(REPO, 'test/fixtures/identities.json'), 'utf8'),
) as Record<string, unknown>;

interface BranchIdentity {
  branch: { kind: string };
  lineageId: string;
  levels: unknown;
}

/**
 * The one intended change: a reinit control of a trunk that rewinds to step k > 0 now starts at step k (it used to
 * train k steps more than the ticket), so it is a new lineage. Returns the identities without those branches'
 * lineage ids and keys, after checking that exactly they changed.
 */
function withoutLateReinit(now: unknown, before: unknown): [unknown, unknown] {
  const a = structuredClone(now) as { spec: { rewind: unknown }; branches?: BranchIdentity[] };
  const b = structuredClone(before) as typeof a;
  if (a.spec.rewind === 'init' || !a.branches || !b.branches) return [a, b];
  a.branches.forEach((branch, i) => {
    const old = b.branches?.[i];
    if (branch.branch.kind !== 'reinit' || !old) return;
    assert.notEqual(branch.lineageId, old.lineageId, 'a reinit after a late rewind is a new lineage');
    for (const x of [branch, old]) {
      x.lineageId = '(new)';
      x.levels = '(new)';
    }
  });
  return [a, b];
}

/**
 * The second intended change: a lottery that measures its levels' geometry has its analysis config in its workflow
 * id, the Hessian measures lost their finite-difference step (`epsilon`) when products became exact, and PAC-Bayes σ
 * gained `on`. Such a
 * lottery gets a new workflow id (its levels, lineages and keys stay: training is reused); nothing else moves.
 */
function withoutHessianStep(now: unknown, before: unknown): [unknown, unknown] {
  const a = structuredClone(now) as {
    spec: { analysis?: { options: Record<string, Record<string, unknown>> } };
  };
  const b = structuredClone(before) as typeof a;
  if (!a.spec.analysis || !b.spec.analysis) return [a, b];
  for (const m of ['hessian', 'trace']) delete b.spec.analysis.options[m]?.epsilon;
  // Per-layer curvature and an adaptive Hutchinson count came with them, as options with defaults.
  const { hessian, trace } = b.spec.analysis.options;
  // …and error bars: curvature and flatness over 3 probe seeds × 2 disjoint subsets by default.
  (b.spec.analysis as Record<string, unknown>).replicates = { seeds: 3, subsets: 2 };
  if (hessian) b.spec.analysis.options.hessian = { ...hessian, perLayer: true };
  if (trace)
    b.spec.analysis.options.trace = { ...trace, minSamples: 10, relativeError: 0.05, perLayer: true };
  // PAC-Bayes σ gained `on` (default: the training error, the published definition).
  const pac = b.spec.analysis.options['pac-bayes'];
  if (pac) b.spec.analysis.options['pac-bayes'] = { on: 'error', ...pac };
  const blank = (x: unknown): void => {
    if (!x || typeof x !== 'object') return;
    for (const [k, v] of Object.entries(x)) {
      if (k === 'workflowId' && typeof v === 'string')
        (x as Record<string, unknown>)[k] = v.replace(/-[0-9a-f]{16}/, '-(new)');
      else blank(v);
    }
  };
  blank(a);
  blank(b);
  return [a, b];
}

test('parsed specs, workflow ids, lineage ids and store keys of the example specs are unchanged', () => {
  const now = computeIdentities();
  assert.deepEqual(Object.keys(now).sort(), Object.keys(recorded).sort());
  for (const [name, value] of Object.entries(now)) {
    const json = JSON.parse(JSON.stringify(value)) as unknown;
    if (name.startsWith('lottery') || name.includes('lottery-')) {
      const [a, b] = withoutHessianStep(...withoutLateReinit(json, recorded[name]));
      assert.deepEqual(a, b, name);
    } else {
      assert.deepEqual(json, recorded[name], name);
    }
  }
});

test('a reinit control of a trunk that rewinds to init keeps its lineage', () => {
  const now = computeIdentities()['lottery:all-branches-rewind-init'] as { branches: BranchIdentity[] };
  const before = recorded['lottery:all-branches-rewind-init'] as { branches: BranchIdentity[] };
  const reinits = now.branches.filter((b) => b.branch.kind === 'reinit');
  assert.equal(reinits.length, 2);
  for (const b of reinits) {
    assert.ok(before.branches.some((o) => o.lineageId === b.lineageId));
  }
});
