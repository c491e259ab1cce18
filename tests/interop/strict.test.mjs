// Every tool schema passes the MCP Inspector's own portability check (`--cli --strict`): no
// `"type": [..., "null"]` unions or other spellings a client's schema subset cannot express.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { BIN } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const inspector = path.join(here, 'node_modules', '.bin', 'mcp-inspector');
const nodeMajor = Number(process.versions.node.split('.')[0]);

test('tools/list passes mcp-inspector --cli --strict without warnings', {
  skip: nodeMajor < 20 ? `the inspector needs node >= 20 (this is ${process.version})` : false,
}, (t) => {
  assert.ok(fs.existsSync(inspector), 'run scripts/setup.sh (npm ci in tests/interop)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpx-strict-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'ws'));
  const run = spawnSync(inspector, ['--cli', '--method', 'tools/list', '--strict', BIN, 'serve',
    '--workspace', path.join(root, 'ws'), '--state-dir', path.join(root, 'state'),
    '--log-level', 'error'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, `inspector exited ${run.status}:\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, /^(Warning|Error):/m, run.stderr);
  const { tools } = JSON.parse(run.stdout);
  assert.ok(tools.some((tool) => tool.name === 'execute_python'), run.stdout.slice(0, 500));
});
