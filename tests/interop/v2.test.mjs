// The 2.x TypeScript SDK client (@modelcontextprotocol/client) against the real server: it
// probes with server/discover and speaks 2026-07-28, where every request carries the protocol
// version and client capabilities in _meta and there is no initialize. Every tool, resources,
// the cache hints, keepalive progress and the structured errors of the modern revision.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  Client, ProtocolError, ResourceNotFoundError, UnsupportedProtocolVersionError,
} from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

import {
  CLIENT_INFO, allText, callOk, responseTo, serverCommand, startServer,
} from './harness.mjs';

const MODERN = '2026-07-28';
const VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
const CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
const SERVER_INFO_KEY = 'io.modelcontextprotocol/serverInfo';
const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
const TOOLS = ['execute_python', 'install_package', 'list_files', 'list_sessions', 'read_file',
  'reset_session', 'write_file'];
const PYLIB = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'pylib');

// The envelope of a modern request, as the 2.x Client writes it.
function envelope(overrides = {}) {
  return {
    [VERSION_KEY]: MODERN,
    'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
    [CAPABILITIES_KEY]: {},
    ...overrides,
  };
}

function lastSent(server, method) {
  const request = server.transport.sent.findLast((m) => m.method === method);
  assert.ok(request, `no ${method} on the wire`);
  return request;
}

// A complete result as the server wrote it: resultType and serverInfo in _meta, and for the
// cacheable methods the cache hints.
function assertModernResult(server, method, { cacheable = false } = {}) {
  const { result, error } = responseTo(server, lastSent(server, method));
  assert.equal(error, undefined, `${method} failed: ${JSON.stringify(error)}`);
  assert.equal(result.resultType, 'complete', `${method}: ${JSON.stringify(result).slice(0, 500)}`);
  assert.equal(result._meta?.[SERVER_INFO_KEY]?.name, 'mcp-executor', `${method} _meta`);
  if (cacheable) {
    assert.ok(Number.isInteger(result.ttlMs) && result.ttlMs >= 0, `${method} ttlMs: ${result.ttlMs}`);
    assert.ok(['public', 'private'].includes(result.cacheScope),
      `${method} cacheScope: ${result.cacheScope}`);
  }
  return result;
}

async function assertProtocolError(promise, code, ErrorClass = ProtocolError) {
  let caught;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.ok(ErrorClass.isInstance(caught), `expected a ${ErrorClass.name}, got ${caught}`);
  assert.equal(caught.code, code, `expected JSON-RPC code ${code}: ${caught}`);
  return caught;
}

// A wheelhouse of one pure-Python wheel, written by the project's own wheel writer. The folders
// must be readable by the installer's sandbox user.
function makeWheelhouse(t) {
  const { root } = serverCommand();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'wheels');
  const run = spawnSync('python3', ['-c',
    'import sys; sys.path.insert(0, sys.argv[1]); from wheelhouse import build_wheel; ' +
    'build_wheel(sys.argv[2], "mcpx-interop-pkg", "1.0")', PYLIB, dir], { encoding: 'utf8' });
  assert.equal(run.status, 0, `building the wheel failed:\n${run.stderr}`);
  for (const p of [root, dir]) fs.chmodSync(p, 0o755);
  return dir;
}

test('the 2.x client negotiates 2026-07-28 with server/discover and never sends initialize',
  async (t) => {
    const server = await startServer(t, { modern: true, listTools: false });
    const { client, transport } = server;

    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    assert.equal(transport.protocolVersion, MODERN);

    // The probe went out first, in place, carrying the envelope.
    const [probe] = transport.sent;
    assert.equal(probe.method, 'server/discover', JSON.stringify(transport.sent[0]));
    assert.equal(probe.params._meta[VERSION_KEY], MODERN);
    assert.deepEqual(probe.params._meta[CAPABILITIES_KEY], {});
    const discover = responseTo(server, probe).result;
    assert.equal(discover.resultType, 'complete');
    assert.ok(discover.supportedVersions.includes(MODERN), JSON.stringify(discover));
    assert.ok(discover.supportedVersions.includes('2025-11-25'), JSON.stringify(discover));
    assert.ok(Number.isInteger(discover.ttlMs), `discover ttlMs: ${discover.ttlMs}`);
    assert.equal(typeof discover.cacheScope, 'string');

    const info = client.getServerVersion();
    assert.equal(info?.name, 'mcp-executor', 'serverInfo comes from the discover result _meta');
    assert.ok(info.version.length > 0);
    const caps = client.getServerCapabilities();
    assert.ok(caps.tools && caps.resources, JSON.stringify(caps));
    assert.deepEqual(caps.extensions, { [TASKS_EXTENSION]: {} });
    // Deprecated in 2026-07-28 but still defined: log messages go to requests that set a level.
    assert.deepEqual(caps.logging, {});
    assert.equal(typeof client.getInstructions(), 'string');
    assert.deepEqual(client.getDiscoverResult().supportedVersions, discover.supportedVersions);

    await client.listTools();
    assertModernResult(server, 'tools/list', { cacheable: true });
    const lifecycle = transport.sent.filter((m) => /^(initialize|notifications\/initialized)$/
      .test(m.method));
    assert.deepEqual(lifecycle, [], 'a modern client has no initialize handshake');
    for (const m of transport.sent.filter((s) => s.id !== undefined)) {
      assert.equal(m.params?._meta?.[VERSION_KEY], MODERN, `${m.method} without the envelope`);
    }
  });

test('the stock stdio transport probes on a sibling process; the session starts modern',
  async (t) => {
    // What a 2.x client does by default: server/discover goes to a short-lived second server,
    // and the session's own server sees its first request with no discover before it.
    const { root, command, args } = serverCommand();
    const transport = new StdioClientTransport({ command, args, stderr: 'pipe' });
    let stderr = '';
    transport.stderr.on('data', (chunk) => {
      stderr += chunk.toString('utf8');
    });
    const client = new Client(CLIENT_INFO, { versionNegotiation: { mode: 'auto' } });
    t.after(async () => {
      await client.close();
      fs.rmSync(root, { recursive: true, force: true });
    });
    await client.connect(transport);
    assert.equal(client.getProtocolEra(), 'modern', stderr);
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((tool) => tool.name).sort(), TOOLS, stderr);
  });

test('every tool answers a 2026-07-28 call', async (t) => {
  const wheels = makeWheelhouse(t);
  const server = await startServer(t, { modern: true, args: ['--find-links', wheels] });
  assert.deepEqual([...server.tools.keys()].sort(), TOOLS);

  const write = await callOk(server, 'write_file', { path: 'notes/a.txt', content: 'héllo\n' });
  assert.match(allText(write), /7/, 'write_file reports the bytes written');
  assertModernResult(server, 'tools/call');
  const read = await callOk(server, 'read_file', { path: 'notes/a.txt' });
  assert.equal(read.content[0].text, 'héllo\n');
  const list = await callOk(server, 'list_files', { path: '.', recursive: true });
  assert.deepEqual(list.structuredContent.entries.map((e) => e.path).sort(),
    ['notes', 'notes/a.txt']);

  await callOk(server, 'execute_python', { code: 'x = 20', session: 'v2' });
  const run = await callOk(server, 'execute_python',
    { code: 'print(open("notes/a.txt").read(), end="")\nx * 2 + 2', session: 'v2' });
  assert.equal(run.structuredContent.result, '42');
  assert.equal(run.structuredContent.stdout, 'héllo\n');
  assert.equal(run.structuredContent.session, 'v2');
  const result = assertModernResult(server, 'tools/call');
  assert.equal(result.structuredContent.result, '42', 'the wire result is the one decoded');

  const installed = await callOk(server, 'install_package', { package: 'mcpx-interop-pkg' },
    { timeout: 300_000 });
  assert.equal(installed.structuredContent.status, 'installed',
    JSON.stringify(installed.structuredContent));
  const imported = await callOk(server, 'execute_python',
    { code: 'import mcpx_interop_pkg\nmcpx_interop_pkg.__version__', session: 'v2' });
  assert.equal(imported.structuredContent.result, "'1.0'");

  const sessions = await callOk(server, 'list_sessions', {});
  assert.deepEqual(sessions.structuredContent.sessions.map((s) => s.session), ['v2']);
  const reset = await callOk(server, 'reset_session', { session: 'v2' });
  assert.deepEqual(reset.structuredContent, { session: 'v2', existed: true });
  const after = await callOk(server, 'list_sessions', {});
  assert.deepEqual(after.structuredContent.sessions, []);

  // A tool error is still a result, not a protocol error.
  const missing = await server.client.callTool({ name: 'read_file', arguments: { path: 'no.txt' } });
  assert.equal(missing.isError, true);
  assert.match(allText(missing), /no\.txt/);
  await assertProtocolError(server.client.callTool({ name: 'no_such_tool', arguments: {} }),
    -32602);
});

test('resources: list, templates and read carry cache hints', async (t) => {
  const server = await startServer(t, { modern: true });
  await callOk(server, 'write_file', { path: 'data/report.txt', content: 'ünïcode\n' });

  const { resources } = await server.client.listResources();
  assertModernResult(server, 'resources/list', { cacheable: true });
  const report = resources.find((r) => r.uri.endsWith('/data/report.txt'));
  assert.ok(report, `data/report.txt not listed: ${JSON.stringify(resources)}`);

  await server.client.listResourceTemplates();
  assertModernResult(server, 'resources/templates/list', { cacheable: true });

  const read = await server.client.readResource({ uri: report.uri });
  assertModernResult(server, 'resources/read', { cacheable: true });
  assert.equal(read.contents[0].uri, report.uri);
  assert.equal(read.contents[0].text, 'ünïcode\n');

  // The client recognises a miss by data.uri, under either code (-32002, the 2025 one, or
  // -32602, which SEP-2164 makes the 2026-07-28 one); the wire code is reported.
  const gone = report.uri.replace('report.txt', 'missing.txt');
  const error = await assertProtocolError(server.client.readResource({ uri: gone }), -32602,
    ResourceNotFoundError);
  assert.equal(error.uri, gone);
  const wire = responseTo(server, lastSent(server, 'resources/read')).error;
  t.diagnostic(`resources/read miss on the wire: ${JSON.stringify(wire)}`);
});

test('a silent cell keeps sending progress, so a short client timeout never fires', async (t) => {
  const server = await startServer(t, { modern: true });
  await callOk(server, 'execute_python', { code: 'import time' });
  const events = [];
  // 5 s of silence against a 3 s timeout: only keepalive progress lets the call finish.
  const result = await callOk(server, 'execute_python', { code: 'time.sleep(5)\n"slept"' }, {
    timeout: 3000,
    resetTimeoutOnProgress: true,
    onprogress: (p) => events.push(p),
  });
  assert.equal(result.structuredContent.result, "'slept'");
  await tick();
  const token = lastSent(server, 'tools/call').params._meta.progressToken;
  assert.notEqual(token, undefined, 'the client sent no progressToken');
  const wire = server.transport.received.filter((m) => m.method === 'notifications/progress');
  assert.ok(wire.length >= 2, `${wire.length} progress notifications in 5 s`);
  for (const m of wire) assert.equal(m.params.progressToken, token);
  assert.equal(events.length, wire.length);
});

test('structured errors of the modern revision', async (t) => {
  const server = await startServer(t, { modern: true, listTools: false });
  const raw = (method, meta, params = {}) =>
    server.transport.request({ method, params: { ...params, _meta: meta } });

  // Unsupported revision: -32022 says what is supported, raw and as the client decodes it.
  const unsupported = await raw('tools/list', envelope({ [VERSION_KEY]: '2099-01-01' }));
  assert.equal(unsupported.error?.code, -32022, JSON.stringify(unsupported));
  assert.equal(unsupported.error.data.requested, '2099-01-01');
  assert.ok(unsupported.error.data.supported.includes(MODERN), JSON.stringify(unsupported));
  assert.ok(unsupported.error.data.supported.includes('2025-11-25'));
  const decoded = await assertProtocolError(
    server.client.listTools({ _meta: { [VERSION_KEY]: '2099-01-01' } }, { cacheMode: 'bypass' }),
    -32022, UnsupportedProtocolVersionError);
  assert.deepEqual(decoded.data.supported, unsupported.error.data.supported);

  // The envelope is required: no client capabilities is invalid params.
  const noCaps = envelope();
  delete noCaps[CAPABILITIES_KEY];
  assert.equal((await raw('tools/list', noCaps)).error?.code, -32602);

  // tasks/* need the tasks extension declared on the request itself.
  const noExtension = await raw('tasks/get', envelope(), { taskId: 'nope' });
  assert.equal(noExtension.error?.code, -32021, JSON.stringify(noExtension));
  assert.deepEqual(noExtension.error.data,
    { requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } });

  // Methods the revision removed.
  for (const method of ['ping', 'logging/setLevel']) {
    const params = method === 'ping' ? {} : { level: 'debug' };
    assert.equal((await raw(method, envelope(), params)).error?.code, -32601, method);
  }

  // The connection is fine afterwards.
  const { tools } = await server.client.listTools({}, { cacheMode: 'bypass' });
  assert.deepEqual(tools.map((tool) => tool.name).sort(), TOOLS);
});
