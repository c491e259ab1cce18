// The official TypeScript SDK client drives the real server over stdio: lifecycle, paged
// tools/list, the file tools, error paths, logging and resources.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { EmptyResultSchema } from '@modelcontextprotocol/sdk/types.js';

import {
  allText, assertMcpError, assertSchemaCompiles, callOk, callTool, listAllResources,
  listToolPages, startServer,
} from './harness.mjs';

const FILE_TOOLS = ['read_file', 'write_file', 'list_files'];

// A valid 2x2 RGB PNG (red and green pixels).
const PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEUlEQVR4nGP4z8DA8B+MgBgAHfAD/dPQfSYAAAAASUVORK5CYII=';

const UTF8_TEXT = 'héllo wörld ✓ 世界 🐍\nsecond line\n';

function firstText(result) {
  const block = result.content.find((c) => c.type === 'text');
  assert.ok(block, `no text block in ${JSON.stringify(result).slice(0, 1000)}`);
  return block.text;
}

test('initialize negotiates the latest revision; server info and capabilities', async (t) => {
  const server = await startServer(t, { listTools: false });
  const { client, transport } = server;

  assert.equal(transport.protocolVersion, '2025-11-25');
  const info = client.getServerVersion();
  assert.equal(info.name, 'mcp-executor');
  assert.equal(typeof info.version, 'string');
  assert.ok(info.version.length > 0, 'serverInfo.version is empty');

  const caps = client.getServerCapabilities();
  assert.ok(caps.tools, `capabilities.tools missing: ${JSON.stringify(caps)}`);
  assert.ok(caps.logging, `capabilities.logging missing: ${JSON.stringify(caps)}`);
  assert.ok(caps.resources, `capabilities.resources missing: ${JSON.stringify(caps)}`);
  const instructions = client.getInstructions();
  if (instructions !== undefined) assert.equal(typeof instructions, 'string');

  assert.deepEqual(await client.ping(), {});
  // The SDK numbers requests from 0; the server must echo id 0 (initialize) correctly.
  const initialize = transport.received.find((m) => m.id === 0);
  assert.ok(initialize?.result, 'no response with id 0 to initialize');
});

test('an older client gets the revision it asked for', async (t) => {
  const server = await startServer(t, { listTools: false, requestVersion: '2025-06-18' });
  assert.equal(server.transport.protocolVersion, '2025-06-18');
  assert.deepEqual(await server.client.ping(), {});
});

test('tools/list pages with --tools-page-size 2 cover every tool once', async (t) => {
  const paged = await startServer(t, { args: ['--tools-page-size', '2'], listTools: false });
  const pages = await listToolPages(paged.client);
  const tools = pages.flatMap((p) => p.tools);
  for (const [i, page] of pages.entries()) {
    assert.ok(page.tools.length <= 2, `page ${i} has ${page.tools.length} tools (page size 2)`);
    if (page.nextCursor !== undefined) {
      assert.equal(typeof page.nextCursor, 'string');
      assert.equal(page.tools.length, 2, `page ${i} is short but has a nextCursor`);
    }
  }
  assert.equal(pages.length, Math.max(1, Math.ceil(tools.length / 2)));

  const names = tools.map((tool) => tool.name);
  assert.equal(new Set(names).size, names.length, `duplicate tools across pages: ${names}`);
  for (const name of FILE_TOOLS) assert.ok(names.includes(name), `${name} missing: ${names}`);

  for (const tool of tools) {
    assert.match(tool.name, /^[a-z][a-z0-9_]*$/);
    assert.equal(typeof tool.description, 'string', `${tool.name}: description`);
    assert.ok(tool.description.length > 0, `${tool.name}: empty description`);
    assert.equal(tool.inputSchema?.type, 'object', `${tool.name}: inputSchema.type`);
    if (tool.outputSchema !== undefined) {
      assert.equal(tool.outputSchema.type, 'object', `${tool.name}: outputSchema.type`);
      // An outputSchema the SDK cannot compile makes every call of the tool throw.
      assertSchemaCompiles(tool.outputSchema, `${tool.name} outputSchema`);
    }
  }

  // A cursor the server never issued is invalid params.
  await assertMcpError(paged.client.listTools({ cursor: 'not-a-cursor' }), -32602);

  // The same tools, in the same order, as an unpaged server lists in one page.
  const whole = await startServer(t, { listTools: false });
  const single = await whole.client.listTools();
  assert.equal(single.nextCursor, undefined);
  assert.deepEqual(names, single.tools.map((tool) => tool.name));
});

test('write_file then read_file round trip, utf-8', async (t) => {
  const server = await startServer(t);
  const write = await callOk(server, 'write_file', { path: 'notes/hello.txt', content: UTF8_TEXT });
  assert.match(allText(write), new RegExp(String(Buffer.byteLength(UTF8_TEXT))),
    `write_file should report the bytes written: ${allText(write)}`);
  assert.equal(fs.readFileSync(path.join(server.workspace, 'notes/hello.txt'), 'utf8'), UTF8_TEXT);

  const read = await callOk(server, 'read_file', { path: 'notes/hello.txt' });
  assert.equal(firstText(read), UTF8_TEXT);

  // The sandbox's view of the same file.
  const viaSandboxPath = await callOk(server, 'read_file', { path: '/workspace/notes/hello.txt' });
  assert.equal(firstText(viaSandboxPath), UTF8_TEXT);

  await callOk(server, 'write_file', { path: 'digits.txt', content: '0123456789' });
  const slice = await callOk(server, 'read_file', { path: 'digits.txt', offset: 3, limit: 4 });
  assert.match(firstText(slice), /^3456/, `offset 3 limit 4: ${firstText(slice)}`);
  assert.doesNotMatch(firstText(slice), /^34567/, 'limit 4 was ignored');

  await callOk(server, 'write_file', { path: 'notes/hello.txt', content: 'more\n', append: true });
  const appended = await callOk(server, 'read_file', { path: 'notes/hello.txt' });
  assert.equal(firstText(appended), `${UTF8_TEXT}more\n`);
});

test('write_file then read_file round trip, base64', async (t) => {
  const server = await startServer(t);
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  await callOk(server, 'write_file',
    { path: 'bin/all-bytes.bin', content: bytes.toString('base64'), encoding: 'base64' });
  assert.deepEqual(fs.readFileSync(path.join(server.workspace, 'bin/all-bytes.bin')), bytes);

  const read = await callOk(server, 'read_file', { path: 'bin/all-bytes.bin' });
  const block = read.content.find((c) => c.type === 'resource');
  assert.ok(block, `binary file should come back as a resource block: ${JSON.stringify(read)}`);
  assert.deepEqual(Buffer.from(block.resource.blob, 'base64'), bytes);

  // base64 of UTF-8 text reads back as text.
  await callOk(server, 'write_file',
    { path: 'b64.txt', content: Buffer.from(UTF8_TEXT).toString('base64'), encoding: 'base64' });
  assert.equal(firstText(await callOk(server, 'read_file', { path: 'b64.txt' })), UTF8_TEXT);
});

test('read_file of a PNG returns an image block', async (t) => {
  const server = await startServer(t);
  await callOk(server, 'write_file',
    { path: 'plots/dot.png', content: PNG_BASE64, encoding: 'base64' });
  const read = await callOk(server, 'read_file', { path: 'plots/dot.png' });
  const image = read.content.find((c) => c.type === 'image');
  assert.ok(image, `expected an image block: ${JSON.stringify(read).slice(0, 1000)}`);
  assert.equal(image.mimeType, 'image/png');
  assert.deepEqual(Buffer.from(image.data, 'base64'), Buffer.from(PNG_BASE64, 'base64'));
});

test('list_files recursive lists nested files and folders', async (t) => {
  const server = await startServer(t);
  const files = { 'top.txt': 'a', 'a/one.txt': 'bb', 'a/b/two.txt': 'ccc' };
  for (const [p, content] of Object.entries(files)) {
    await callOk(server, 'write_file', { path: p, content });
  }

  const result = await callOk(server, 'list_files', { path: '.', recursive: true });
  const entries = result.structuredContent?.entries;
  assert.ok(Array.isArray(entries), `no entries: ${JSON.stringify(result).slice(0, 1000)}`);
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const [p, content] of Object.entries(files)) {
    assert.equal(byPath.get(p)?.type, 'file', `${p} in ${JSON.stringify(entries)}`);
    assert.equal(byPath.get(p).size, content.length, `${p} size`);
    assert.match(byPath.get(p).mtime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, `${p} mtime`);
  }
  for (const dir of ['a', 'a/b']) {
    assert.equal(byPath.get(dir)?.type, 'directory', `${dir} in ${JSON.stringify(entries)}`);
  }
  assert.equal(entries.length, 5, `unexpected entries: ${JSON.stringify(entries)}`);
  for (const p of [...Object.keys(files), 'a/b']) {
    assert.ok(allText(result).includes(p), `the text block should name ${p} too`);
  }

  // Not recursive: the nested file is not listed.
  const flat = await callOk(server, 'list_files', { path: '.' });
  const flatText = JSON.stringify(flat.structuredContent ?? allText(flat));
  assert.ok(flatText.includes('top.txt'), flatText);
  assert.ok(!flatText.includes('two.txt'), `non-recursive listing went deep: ${flatText}`);
});

test('paths outside the workspace are refused with a clear error', async (t) => {
  const server = await startServer(t);
  for (const p of ['../outside.txt', '/etc/passwd', 'a/../../outside.txt', '/workspace/../etc']) {
    const read = await callTool(server, 'read_file', { path: p });
    assert.equal(read.isError, true, `read_file ${p} should fail: ${JSON.stringify(read)}`);
    assert.match(allText(read), /outside|escape|not allowed|beneath/i, `read_file ${p}`);
  }
  const outside = path.join(path.dirname(server.workspace), 'escaped.txt');
  const write = await callTool(server, 'write_file', { path: '../escaped.txt', content: 'x' });
  assert.equal(write.isError, true, `write_file ../escaped.txt should fail: ${JSON.stringify(write)}`);
  assert.match(allText(write), /outside|escape|not allowed|beneath/i);
  assert.equal(fs.existsSync(outside), false, 'write_file wrote outside the workspace');

  const list = await callTool(server, 'list_files', { path: '..' });
  assert.equal(list.isError, true, `list_files .. should fail: ${JSON.stringify(list)}`);
});

test('unknown tool is a -32602 protocol error; bad arguments are tool errors', async (t) => {
  const server = await startServer(t);
  await assertMcpError(server.client.callTool({ name: 'no_such_tool', arguments: {} }), -32602,
    /no_such_tool/);

  const badType = await callTool(server, 'read_file', { path: 42 });
  assert.equal(badType.isError, true, `path: 42 should fail: ${JSON.stringify(badType)}`);
  assert.match(allText(badType), /path/, 'the error names the argument');

  const missing = await callTool(server, 'write_file', { path: 'x.txt' });
  assert.equal(missing.isError, true, `missing content should fail: ${JSON.stringify(missing)}`);
  assert.match(allText(missing), /content/);

  const badEncoding = await callTool(server, 'write_file',
    { path: 'x.txt', content: 'abc', encoding: 'rot13' });
  assert.equal(badEncoding.isError, true, `encoding rot13 should fail`);
  assert.match(allText(badEncoding), /encoding/);

  const badBase64 = await callTool(server, 'write_file',
    { path: 'x.txt', content: '!!not base64!!', encoding: 'base64' });
  assert.equal(badBase64.isError, true, 'invalid base64 should fail');
  assert.equal(fs.existsSync(path.join(server.workspace, 'x.txt')), false);

  const missingFile = await callTool(server, 'read_file', { path: 'nope.txt' });
  assert.equal(missingFile.isError, true);
  assert.match(allText(missingFile), /nope\.txt/);

  // The server is still fine.
  assert.deepEqual(await server.client.ping(), {});
});

test('logging/setLevel accepts debug and rejects an unknown level', async (t) => {
  const server = await startServer(t, { listTools: false });
  assert.deepEqual(await server.client.setLoggingLevel('debug'), {});
  await assertMcpError(server.client.request(
    { method: 'logging/setLevel', params: { level: 'loud' } }, EmptyResultSchema), -32602);
  assert.deepEqual(await server.client.setLoggingLevel('error'), {});
});

test('resources: a written file is listed and readable', async (t) => {
  const server = await startServer(t);
  await callOk(server, 'write_file', { path: 'data/report.txt', content: UTF8_TEXT });
  await callOk(server, 'write_file',
    { path: 'data/dot.png', content: PNG_BASE64, encoding: 'base64' });

  const resources = await listAllResources(server.client);
  const text = resources.find((r) => r.uri.endsWith('/data/report.txt'));
  assert.ok(text, `data/report.txt not listed: ${JSON.stringify(resources)}`);
  assert.equal(typeof text.name, 'string');
  const png = resources.find((r) => r.uri.endsWith('/data/dot.png'));
  assert.ok(png, `data/dot.png not listed: ${JSON.stringify(resources)}`);

  const readText = await server.client.readResource({ uri: text.uri });
  assert.equal(readText.contents.length, 1);
  assert.equal(readText.contents[0].uri, text.uri);
  assert.equal(readText.contents[0].text, UTF8_TEXT);

  const readPng = await server.client.readResource({ uri: png.uri });
  assert.equal(readPng.contents[0].mimeType, 'image/png');
  assert.deepEqual(Buffer.from(readPng.contents[0].blob, 'base64'),
    Buffer.from(PNG_BASE64, 'base64'));

  await assertMcpError(
    server.client.readResource({ uri: text.uri.replace('report.txt', 'missing.txt') }), -32002);
});

test('close() ends stdin and the server exits by itself with status 0', async (t) => {
  const server = await startServer(t, { listTools: false });
  const child = server.child();
  assert.ok(child, 'no server process');
  // The SDK escalates to SIGTERM after 2 s; record it instead of timing the exit.
  const signals = [];
  const kill = child.kill.bind(child);
  child.kill = (signal) => {
    signals.push(signal);
    return kill(signal);
  };
  const exited = child.exitCode !== null ? Promise.resolve() : once(child, 'exit');
  await server.close();
  await exited;
  assert.deepEqual(signals, [], 'the server did not exit on EOF; the SDK had to signal it');
  assert.equal(child.signalCode, null);
  assert.equal(child.exitCode, 0, `exit status; stderr:\n${server.stderr()}`);
});
