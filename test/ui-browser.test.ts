// The operator's view in a real browser: Debian's chromium, driven by playwright-core, against the test stack's
// Temporal UI. The workflow list filtered by `Experiment` shows a finished lottery trunk; its page shows the
// trunk's summary and its search attributes. Screenshots go to .data/test-output/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { chromium, type Page } from 'playwright-core';

import { startOrAttachLottery } from '../client/runs';
import { parseLotterySpec } from '../contract/lottery';
import { lotteryKind } from '../contract/spec-kinds';
import { REPO_ROOT } from '../infra/paths';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const workers = useTestWorkers(e);
const tag = `ui${Date.now().toString(36)}`;
const OUT = path.join(REPO_ROOT, '.data', 'test-output');
const CHROMIUM = process.env.LTH_CHROMIUM ?? '/usr/bin/chromium';

async function shot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

test('the UI lists a trunk by Experiment and shows its summary and search attributes', async () => {
  assert.ok(
    fs.existsSync(CHROMIUM),
    `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) or set LTH_CHROMIUM`,
  );
  const ui = e.temporal.uiUrl;
  assert.ok(ui, 'the test stack has a UI');
  const spec = parseLotterySpec({
    experiment: tag,
    train: tinyLenetTrain(61, { iterations: 10, evalEvery: 10 }),
    levels: 0,
    pruning: { kind: 'global-magnitude', fraction: 0.2 },
    rewind: 'init',
  });
  const run = await startOrAttachLottery(workers.client, spec);
  await run.handle.result();

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const query = encodeURIComponent(`Experiment="${tag}"`);
    await page.goto(`${ui}/namespaces/${e.temporal.namespace}/workflows?query=${query}`);
    try {
      await page.getByText(run.workflowId).first().waitFor({ timeout: 30_000 });
    } catch (err) {
      throw new Error(`the list never showed ${run.workflowId} (see ${await shot(page, 'ui-list')})`, {
        cause: err,
      });
    }
    await shot(page, 'ui-list');

    await page.getByRole('link', { name: run.workflowId }).first().click();
    await page.waitForURL(/\/workflows\/[^?]+/, { timeout: 30_000 });
    // The summary and details are under the page's "User Metadata" tab, the attributes under "Search Attributes".
    const summary = lotteryKind.describe(spec);
    await page.getByText('User Metadata', { exact: true }).first().click();
    // The UI renders summary and details as Markdown in sandboxed frames: read every frame's text.
    const allText = async () => {
      const texts = await Promise.all(
        page.frames().map((f) =>
          f
            .locator('body')
            .innerText()
            .catch(() => ''),
        ),
      );
      return texts.join(' ').replace(/\s+/g, ' ');
    };
    for (let i = 0; !(await allText()).includes(summary); i++) {
      if (i >= 60)
        throw new Error(
          `the page never showed the summary '${summary}' (see ${await shot(page, 'ui-workflow')})`,
        );
      await page.waitForTimeout(500);
    }
    assert.match(
      await allText(),
      /level-0\/weights\.safetensors/,
      'the current details list the level weights',
    );
    await shot(page, 'ui-workflow-metadata');
    await page.getByText('Search Attributes', { exact: true }).first().click();
    await page
      .getByText('RunKind')
      .first()
      .waitFor({ timeout: 30_000 })
      .catch(() => undefined);
    const text = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
    const file = await shot(page, 'ui-workflow-search-attributes');
    for (const expected of ['Experiment', tag, 'RunKind', 'lottery', 'Phase', 'done', 'TestAccuracy']) {
      assert.ok(text.includes(expected), `the workflow page does not show '${expected}' (see ${file})`);
    }
  } finally {
    await browser.close();
  }
});
