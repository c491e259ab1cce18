// Replies sized for a model (docs/REPLIES.md), through the official SDK client: the byte budget
// of each response as it came over the wire, what each half of a result carries, trimmed
// tracebacks and right-sized images.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { allText, callTool, startServer } from './harness.mjs';

// The response to the last tools/call, as the server wrote it (one compact JSON line).
function wireBytes(server) {
  const responses = server.transport.received.filter((m) => m.id !== undefined && !m.method);
  return Buffer.byteLength(JSON.stringify(responses.at(-1)));
}

function pngSize(b64) {
  const raw = Buffer.from(b64, 'base64');
  assert.equal(raw.subarray(1, 4).toString('latin1'), 'PNG');
  return { width: raw.readUInt32BE(16), height: raw.readUInt32BE(20), bytes: raw.length };
}

const run = (server, code) =>
  callTool(server, 'execute_python', { code, session: 'replies' }, { timeout: 180_000 });

test('a million printed lines cost the model a few kilobytes', async (t) => {
  const server = await startServer(t);
  const result = await run(server, 'for i in range(10**6): print(i)');
  assert.equal(result.isError, false);
  const wire = wireBytes(server);
  assert.ok(wire < 24 * 1024, `reply is ${wire} bytes on the wire`);
  const s = result.structuredContent;
  assert.equal(s.truncated, true);
  assert.ok(Buffer.byteLength(s.stdout) <= 8 * 1024 + 400, `stdout is ${s.stdout.length}`);
  assert.match(s.stdout, /^\[\.\.\. [\d,]+ lines \([\d.]+ MiB\) not shown; all 1,000,000 lines: \/workspace\/\.mcp-executor\/outputs\/replies-1-stdout\.txt; read_file offset=\d+ limit=8192 reads on from here\]$/m);
  const text = allText(result);
  assert.ok(Buffer.byteLength(text) < 2048 + 600, `text block is ${text.length}`);
  assert.match(text, /structuredContent\.stdout has 8\.0 KiB of head and tail/);
});

test('a pandas KeyError names the column and the line in a short traceback', async (t) => {
  const server = await startServer(t);
  const result = await run(server, "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf['nope']");
  assert.equal(result.isError, true);
  const text = allText(result);
  assert.ok(text.length <= 800, `traceback is ${text.length} characters:\n${text}`);
  assert.match(text, /KeyError: 'nope'/);
  assert.match(text, /<cell 1>", line 3/);
  assert.doesNotMatch(text, /mcpx_|ast\.py/);
});

test('a 4000 px figure comes back within 1568 px and 300 KiB, and says so', async (t) => {
  const server = await startServer(t);
  const result = await run(server, 'import matplotlib.pyplot as plt\n' +
    'fig = plt.figure(figsize=(40, 40), dpi=100)\nplt.plot(range(100))');
  assert.equal(result.isError, false);
  const images = result.content.filter((c) => c.type === 'image');
  assert.equal(images.length, 1);
  const size = pngSize(images[0].data);
  assert.ok(Math.max(size.width, size.height) <= 1568, JSON.stringify(size));
  assert.ok(size.bytes <= 300 * 1024, JSON.stringify(size));
  assert.match(JSON.stringify(result.structuredContent.notes), /downscaled from/);
  assert.equal(result.structuredContent.result, undefined, 'a plotted Line2D list is no result');
});
