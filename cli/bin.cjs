#!/usr/bin/env node
// Lets `npx lth` / an npm-linked `lth` run the TypeScript sources directly.
require('tsx/cjs');
require('./main.ts');
