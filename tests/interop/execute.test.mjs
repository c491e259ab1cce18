// The official TypeScript SDK client drives execute_python, list_sessions and reset_session:
// session state, results and errors, figures, progress, abort and the SDK's own timeout.
// Every result passes the SDK's check of structuredContent against the outputSchema.
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';

import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';

import {
  allText, assertMatchesSchema, callOk, callTool, sentToolCall, startServer,
} from './harness.mjs';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Far below the 30 s the interrupted code would sleep: a follow-up call that has to wait for the
// sleep to end fails instead of passing slowly.
const PROMPT_MS = 15000;

function execute(server, code, session, options) {
  const args = session === undefined ? { code } : { code, session };
  return callTool(server, 'execute_python', args, options);
}

function executeOk(server, code, session, options) {
  const args = session === undefined ? { code } : { code, session };
  return callOk(server, 'execute_python', args, options);
}

// Error results skip the harness's schema check; they carry structuredContent all the same.
function assertExecuteSchema(server, result) {
  assert.ok(result.structuredContent,
    `no structuredContent: ${JSON.stringify(result).slice(0, 1000)}`);
  assertMatchesSchema(server.tools.get('execute_python').outputSchema, result.structuredContent,
    'execute_python structuredContent');
}

// Aborted or timed-out: the SDK must have told the server, and the server must not answer.
function assertCancelledOnWire(server, requestId, reasonPattern) {
  const cancels = server.transport.sent.filter(
    (m) => m.method === 'notifications/cancelled' && m.params?.requestId === requestId);
  assert.equal(cancels.length, 1, `expected one notifications/cancelled for request ${requestId}`);
  if (reasonPattern) assert.match(String(cancels[0].params.reason), reasonPattern);
  const answers = server.transport.received.filter((m) => m.id === requestId && !m.method);
  assert.deepEqual(answers, [], 'the server answered a request the client had cancelled');
}

// Width and height from a PNG's IHDR chunk (always the first chunk).
function pngSize(bytes) {
  assert.ok(bytes.length >= 24, `PNG of ${bytes.length} bytes is too short`);
  assert.deepEqual(bytes.subarray(0, 8), PNG_SIGNATURE, 'not a PNG signature');
  assert.equal(bytes.toString('latin1', 12, 16), 'IHDR', 'the first PNG chunk is not IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

test('execute_python keeps state across calls and returns the last expression', async (t) => {
  const server = await startServer(t);
  assert.ok(server.tools.get('execute_python')?.outputSchema, 'execute_python has no outputSchema');

  const first = await executeOk(server, 'a = 20\ndef twice(v):\n    return 2 * v\n');
  const s1 = first.structuredContent;
  assert.equal(s1.session, 'default');
  assert.equal(s1.status, 'ok');
  assert.equal(s1.result, undefined, 'an assignment has no result');
  assert.equal(s1.error, undefined);
  assert.deepEqual(s1.images, []);
  assert.equal(first.isError, false);

  const second = await executeOk(server, 'import sys\nprint("hello", "wörld")\ntwice(a) + 2');
  const s2 = second.structuredContent;
  assert.equal(s2.result, '42');
  assert.equal(s2.stdout, 'hello wörld\n');
  assert.equal(s2.stderr, '');
  assert.equal(s2.execution_count, s1.execution_count + 1);
  assert.match(allText(second), /hello wörld/);
  assert.match(allText(second), /42/);

  // The result is the repr, as in a notebook.
  const repr = await executeOk(server, '"é" * 2');
  assert.equal(repr.structuredContent.result, "'éé'");
  const stderr = await executeOk(server, 'print("to stderr", file=sys.stderr)');
  assert.equal(stderr.structuredContent.stderr, 'to stderr\n');

  // A named session has its own namespace; the default one is untouched by it.
  const other = await execute(server, 'a', 'other');
  assertExecuteSchema(server, other);
  assert.equal(other.isError, true);
  assert.equal(other.structuredContent.session, 'other');
  assert.equal(other.structuredContent.error?.type, 'NameError');
  assert.equal((await executeOk(server, 'a')).structuredContent.result, '20');
});

test('an exception is an error result with type, message and traceback', async (t) => {
  const server = await startServer(t);
  const result = await execute(server, 'kept = 5\ndef f(d):\n    return 1 / d\nf(0)');
  assertExecuteSchema(server, result);
  assert.equal(result.isError, true, `1 / 0 should fail: ${allText(result)}`);
  const s = result.structuredContent;
  assert.equal(s.status, 'error');
  assert.equal(s.result, undefined);
  assert.equal(s.error?.type, 'ZeroDivisionError');
  assert.match(s.error.message, /division by zero/);
  assert.match(s.error.traceback, /ZeroDivisionError/);
  assert.match(s.error.traceback, /in f/, 'the traceback names the failing function');
  assert.match(allText(result), /ZeroDivisionError/, 'the text block shows the error too');
  assert.equal(s.kill_reason, undefined);

  const syntax = await execute(server, 'def broken(:\n    pass');
  assertExecuteSchema(server, syntax);
  assert.equal(syntax.isError, true);
  assert.equal(syntax.structuredContent.error?.type, 'SyntaxError');

  // Statements before the exception ran; the session goes on.
  assert.equal((await executeOk(server, 'kept')).structuredContent.result, '5');

  // Bad arguments are tool errors, not protocol errors.
  const badSession = await callTool(server, 'execute_python', { code: '1', session: '../x' });
  assert.equal(badSession.isError, true, `session '../x' is accepted: ${allText(badSession)}`);
  assert.match(allText(badSession), /session/);
  const noCode = await callTool(server, 'execute_python', {});
  assert.equal(noCode.isError, true);
  assert.match(allText(noCode), /code/);
});

test('a matplotlib figure comes back as a PNG image block matching its metadata', async (t) => {
  const server = await startServer(t);
  const code = [
    'import matplotlib.pyplot as plt',
    'fig, ax = plt.subplots(figsize=(4, 3), dpi=50)',
    'ax.plot([0, 1, 2], [0, 1, 4])',
    'ax.set_title("squares")',
  ].join('\n');
  const result = await executeOk(server, code);
  const images = result.structuredContent.images;
  const blocks = result.content.filter((c) => c.type === 'image');
  assert.equal(images.length, 1, `expected one figure: ${JSON.stringify(images)}`);
  assert.equal(blocks.length, 1, 'expected one image content block');
  assert.equal(blocks[0].mimeType, 'image/png');
  assert.equal(images[0].mime_type, 'image/png');

  const png = Buffer.from(blocks[0].data, 'base64');
  assert.equal(png.toString('base64'), blocks[0].data, 'image data is not canonical base64');
  const size = pngSize(png);
  assert.ok(size.width > 0 && size.height > 0, `empty image ${JSON.stringify(size)}`);
  assert.equal(images[0].width, size.width, 'structuredContent width vs IHDR');
  assert.equal(images[0].height, size.height, 'structuredContent height vs IHDR');
  assert.equal(images[0].bytes, png.length, 'structuredContent bytes vs decoded size');

  // The figure was sent once; the next call has no image.
  const next = await executeOk(server, '1 + 1');
  assert.deepEqual(next.structuredContent.images, []);
  assert.equal(next.content.filter((c) => c.type === 'image').length, 0);
});

test('progress notifications reset the SDK timeout and carry the printed text', async (t) => {
  const server = await startServer(t);
  // Start the kernel first: the SDK timeout below is meant for the running code only.
  await executeOk(server, 'import time');

  const code = [
    'for i in range(20):',
    '    print(f"tick {i}")',
    '    time.sleep(0.3)',
    '"finished"',
  ].join('\n');
  const events = [];
  // 6 s of code against a 3 s timeout: only the progress notifications (one per print, every
  // 0.3 s) let the call finish.
  const result = await executeOk(server, code, undefined, {
    timeout: 3000,
    resetTimeoutOnProgress: true,
    onprogress: (p) => events.push(p),
  });
  assert.equal(result.structuredContent.result, "'finished'");
  assert.equal(result.structuredContent.stdout,
    Array.from({ length: 20 }, (_, i) => `tick ${i}\n`).join(''));

  // The SDK delivers notifications asynchronously; let the queued ones through.
  await tick();
  const request = sentToolCall(server, code);
  const token = request.params._meta?.progressToken;
  assert.notEqual(token, undefined, 'the SDK sent no progressToken');
  const wire = server.transport.received.filter((m) => m.method === 'notifications/progress');
  assert.ok(wire.length > 0, 'the server sent no notifications/progress');
  for (const m of wire) assert.equal(m.params.progressToken, token, 'progress for a foreign token');

  assert.ok(events.length > 0, 'onprogress was never called');
  for (const [i, p] of events.entries()) {
    assert.equal(typeof p.progress, 'number');
    if (i > 0) {
      assert.ok(p.progress > events[i - 1].progress,
        `progress must increase: ${JSON.stringify(events)}`);
    }
    if (p.total !== undefined) {
      assert.ok(p.progress <= p.total, `progress > total: ${JSON.stringify(p)}`);
    }
  }
  const messages = events.map((p) => p.message ?? '').join('\n');
  assert.match(messages, /tick \d/, `no printed text in progress messages: ${messages}`);
});

test('aborting a call cancels it on the server; the session keeps its state', async (t) => {
  const server = await startServer(t);
  await executeOk(server, 'import time\nx = 41');

  const code = 'time.sleep(30)\nx = 0';
  const controller = new AbortController();
  const pending = execute(server, code, undefined, { signal: controller.signal });
  // Attach the rejection handler now: the abort below rejects while the test awaits other calls.
  const rejected = assert.rejects(pending, (error) => {
    assert.match(String(error), /abort/i, `unexpected rejection: ${error}`);
    return true;
  });

  // A long call blocks neither the protocol nor other tools.
  assert.deepEqual(await server.client.ping(), {});
  const busy = await callOk(server, 'list_sessions', {});
  const running = busy.structuredContent.sessions.find((s) => s.session === 'default');
  assert.equal(running?.state, 'busy', JSON.stringify(busy.structuredContent));

  setTimeout(() => controller.abort(), 1000);
  await rejected;
  const requestId = sentToolCall(server, code).id;

  const after = await executeOk(server, 'x + 1', undefined, { timeout: PROMPT_MS });
  assert.equal(after.structuredContent.result, '42',
    'the interrupted code went on running, or the session lost its state');
  assert.equal(after.structuredContent.status, 'ok');
  // The follow-up ran after the cancelled call ended, so any answer to it came before this one.
  assertCancelledOnWire(server, requestId, /abort/i);
});

test('aborting a queued call drops it; the running call is not affected', async (t) => {
  const server = await startServer(t);
  await executeOk(server, 'import os, time\ny = 1');

  // The running call waits for a file the test writes, so the queued call is still queued when
  // it is aborted, however slow the machine.
  const running = executeOk(server,
    'while not os.path.exists("go"):\n    time.sleep(0.05)\ny += 1\ny');
  const controller = new AbortController();
  const queuedCode = 'y = 100';
  const queued = execute(server, queuedCode, undefined, { signal: controller.signal });
  const rejected = assert.rejects(queued, /abort/i);
  // Requests are handled in order, so the server has queued the second call by now.
  const list = await callOk(server, 'list_sessions', {});
  const session = list.structuredContent.sessions.find((s) => s.session === 'default');
  assert.equal(session?.state, 'busy', JSON.stringify(list.structuredContent));
  assert.equal(session.queued, 1, JSON.stringify(list.structuredContent));
  controller.abort();
  await rejected;
  await callOk(server, 'write_file', { path: 'go', content: '' });

  assert.equal((await running).structuredContent.result, '2');
  const after = await executeOk(server, 'y', undefined, { timeout: PROMPT_MS });
  assert.equal(after.structuredContent.result, '2', 'the aborted queued call ran anyway');
  assertCancelledOnWire(server, sentToolCall(server, queuedCode).id, /abort/i);
});

test("the SDK's own request timeout cancels the call on the server", async (t) => {
  const server = await startServer(t);
  await executeOk(server, 'import time\nmarker = "kept"');

  const code = 'time.sleep(30)\nmarker = "overwritten"';
  await assert.rejects(execute(server, code, undefined, { timeout: 1000 }), (error) => {
    assert.equal(error.code, ErrorCode.RequestTimeout, `expected a request timeout: ${error}`);
    return true;
  });
  const requestId = sentToolCall(server, code).id;

  const after = await executeOk(server, 'marker', undefined, { timeout: PROMPT_MS });
  assert.equal(after.structuredContent.result, "'kept'");
  assertCancelledOnWire(server, requestId, /timed out/i);

  // The session is still a normal one.
  const list = await callOk(server, 'list_sessions', {});
  const session = list.structuredContent.sessions.find((s) => s.session === 'default');
  assert.equal(session?.state, 'idle', JSON.stringify(list.structuredContent));
});

test('list_sessions and reset_session round trip', async (t) => {
  const server = await startServer(t);
  const empty = await callOk(server, 'list_sessions', {});
  assert.deepEqual(empty.structuredContent.sessions, [], 'a fresh server has no sessions');
  assert.ok(Number.isInteger(empty.structuredContent.max_sessions));
  assert.ok(empty.structuredContent.max_sessions >= 2, 'the test needs two sessions');

  await executeOk(server, 'v = 1', 'alpha');
  await executeOk(server, 'w = 2', 'beta');
  await executeOk(server, 'w += 1', 'beta');

  const listed = await callOk(server, 'list_sessions', {});
  const byName = new Map(listed.structuredContent.sessions.map((s) => [s.session, s]));
  assert.deepEqual([...byName.keys()].sort(), ['alpha', 'beta']);
  assert.equal(byName.get('alpha').execution_count, 1);
  assert.equal(byName.get('beta').execution_count, 2);
  for (const s of byName.values()) {
    assert.equal(s.state, 'idle', JSON.stringify(s));
    assert.ok(s.age_seconds >= 0, JSON.stringify(s));
  }
  assert.match(allText(listed), /alpha/);
  assert.match(allText(listed), /beta/);

  const reset = await callOk(server, 'reset_session', { session: 'alpha' });
  assert.deepEqual(reset.structuredContent, { session: 'alpha', existed: true });
  const afterReset = await callOk(server, 'list_sessions', {});
  assert.deepEqual(afterReset.structuredContent.sessions.map((s) => s.session), ['beta']);

  // alpha starts fresh; beta kept its variables.
  const fresh = await execute(server, 'v', 'alpha');
  assertExecuteSchema(server, fresh);
  assert.equal(fresh.isError, true, `v should be gone after the reset: ${allText(fresh)}`);
  assert.equal(fresh.structuredContent.error?.type, 'NameError');
  assert.equal(fresh.structuredContent.execution_count, 1);
  assert.equal((await executeOk(server, 'w', 'beta')).structuredContent.result, '3');

  const missing = await callOk(server, 'reset_session', { session: 'never-used' });
  assert.deepEqual(missing.structuredContent, { session: 'never-used', existed: false });
  const bad = await callTool(server, 'list_sessions', { unexpected: true });
  assert.equal(bad.isError, true, 'list_sessions takes no arguments');
});
