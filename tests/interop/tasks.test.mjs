// The Tasks extension of 2026-07-28 (io.modelcontextprotocol/tasks) through its own client,
// @modelcontextprotocol/ext-tasks, over a 2.x Client in the modern era: a long execute_python
// call comes back as a task the session polls (tasks/get) to completion, to cancellation or to
// the cell's own timeout; a short call comes back as the plain result.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  createTaskSessionFromClient, resultFromTaskOutcome,
} from '@modelcontextprotocol/ext-tasks/client';

import {
  CLIENT_INFO, callOk, responseTo, sentToolCall, startServer,
} from './harness.mjs';

const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
const CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';

// Far below the 30 s the cancelled cell would sleep (as in execute.test.mjs).
const PROMPT_MS = 15000;

// ext-tasks sends tools/call and tasks/* through the host's rawDispatch, because the 2.x Client
// rejects a result whose resultType is "task". The harness transport sends them beside the
// Client (ids of its own) and hands back the JSON-RPC response in ext-tasks' shape.
function rawDispatch(transport) {
  return async (request, options = {}) => {
    const response = await transport.request(request,
      { timeout: options.context?.requestTimeoutMs, signal: options.signal });
    return response.error
      ? { kind: 'error', error: response.error }
      : { kind: 'result', result: response.result };
  };
}

async function startTaskSession(t) {
  const server = await startServer(t, { modern: true });
  const backgroundErrors = [];
  const session = createTaskSessionFromClient(server.client, {
    endpointId: 'mcpx-interop',
    rawDispatch: rawDispatch(server.transport),
    // The envelope the Client was set up with; ext-tasks adds the tasks extension to it.
    v2RequestFraming: {
      protocolVersion: server.client.getNegotiatedProtocolVersion(),
      clientInfo: CLIENT_INFO,
      clientCapabilities: {},
    },
    onError: (error) => backgroundErrors.push(error),
  });
  t.after(async () => {
    await session.close();
    assert.deepEqual(backgroundErrors.map(String), [], 'ext-tasks reported errors');
  });
  return { server, session };
}

function execute(session, code, extra = {}, options = {}) {
  return session.callTool('execute_python', { code, ...extra }, options);
}

// Settles an execution and records what the session saw, as "status (statusMessage)".
async function settleRecorded(execution) {
  const seen = [];
  const { outcome } = await execution.settle({
    onEvent: (event) => {
      seen.push(event.type === 'task'
        ? `${event.task.status}${event.task.statusMessage ? ` (${event.task.statusMessage})` : ''}`
        : `outcome:${event.outcome.status}`);
    },
  });
  return { outcome, seen };
}

test('ext-tasks sees the tasks extension of a 2026-07-28 session', async (t) => {
  const { server, session } = await startTaskSession(t);
  assert.equal(server.client.getProtocolEra(), 'modern');
  assert.deepEqual(server.client.getServerCapabilities().extensions, { [TASKS_EXTENSION]: {} });
  assert.equal(session.capabilities.execution, true);
  assert.equal(session.capabilities.cancellation, true);
});

test('a short cell through the task session is an immediate result', async (t) => {
  const { server, session } = await startTaskSession(t);
  // A plain call first (never a task without the extension): the kernel's start alone may take
  // the 1 s after which the server makes a call a task (under ASan it can).
  await callOk(server, 'execute_python', { code: 'pass' });
  const code = '6 * 7';
  const execution = await execute(session, code);
  assert.equal(execution.kind, 'immediate');
  const result = resultFromTaskOutcome(await execution.result());
  assert.equal(result.resultType, 'complete');
  assert.equal(result.structuredContent.result, '42');

  // The request declared the extension; the server answered in place anyway.
  const request = sentToolCall(server, code);
  assert.deepEqual(request.params._meta[CAPABILITIES_KEY].extensions, { [TASKS_EXTENSION]: {} });
  assert.equal(responseTo(server, request).result.resultType, 'complete');
});

test('a long cell becomes a task that the session polls to completion', async (t) => {
  const { server, session } = await startTaskSession(t);
  // Warmed by a plain call: through the session, a cold kernel's start could itself become a
  // task, whose background polls would then mix with this one's.
  await callOk(server, 'execute_python', { code: 'import time' });
  const code = 'for i in range(4):\n    print(f"step {i}")\n    time.sleep(1)\nprint("done")';
  const execution = await execute(session, code);
  assert.equal(execution.kind, 'task', 'a 4 s cell should outlast the server\'s 1 s wait');
  const { taskId } = execution.handle;

  // tasks/update is acknowledged even though the server never asks for input.
  await session.task(taskId).update({});

  const { outcome, seen } = await settleRecorded(execution);
  t.diagnostic(`ext-tasks 0.2.2 on 2026-07-28: ${seen.join(' → ')}`);
  assert.equal(outcome.status, 'completed', seen.join(' → '));
  assert.equal(seen[0].split(' ')[0], 'working');
  assert.equal(seen.at(-2).split(' ')[0], 'completed');
  assert.equal(outcome.result.isError, false);
  assert.equal(outcome.result.structuredContent.stdout, 'step 0\nstep 1\nstep 2\nstep 3\ndone\n');
  assert.match(seen.join('\n'), /step \d|running for/, 'statusMessage carried no progress');

  // On the wire: the task handle in place of the result, then tasks/get until completed.
  const created = responseTo(server, sentToolCall(server, code)).result;
  assert.equal(created.resultType, 'task', JSON.stringify(created));
  assert.equal(created.taskId, taskId);
  assert.equal(created.status, 'working');
  for (const key of ['createdAt', 'lastUpdatedAt']) assert.equal(typeof created[key], 'string');
  assert.ok(Number.isInteger(created.pollIntervalMs), JSON.stringify(created));
  assert.ok(created.ttlMs === null || Number.isInteger(created.ttlMs), JSON.stringify(created));
  const polls = server.transport.sent.filter((m) => m.method === 'tasks/get');
  assert.ok(polls.length >= 1);
  for (const poll of polls) {
    assert.equal(poll.params.taskId, taskId);
    assert.equal(responseTo(server, poll).result?.resultType, 'complete');
  }
  assert.equal((await session.task(taskId).snapshot()).status, 'completed');
});

test('cancelling a task interrupts the cell; the session keeps its variables', async (t) => {
  const { server, session } = await startTaskSession(t);
  await callOk(server, 'execute_python', { code: 'import time\nkept = 41' });
  const execution = await execute(session, 'time.sleep(30)\nkept = 0');
  assert.equal(execution.kind, 'task');
  const { taskId } = execution.handle;

  const settled = settleRecorded(execution);
  await execution.cancel();
  const { outcome, seen } = await settled;
  // ext-tasks ends the execution on the server's acknowledgement; the server's own status is
  // read back afterwards.
  const after = await session.task(taskId).snapshot();
  t.diagnostic(`ext-tasks 0.2.2 on 2026-07-28, cancelled: ${seen.join(' → ')}; ` +
    `tasks/get afterwards: ${after.status}`);
  assert.equal(outcome.status, 'cancelled');
  assert.equal(after.status, 'cancelled');
  const cancel = server.transport.sent.find((m) => m.method === 'tasks/cancel');
  assert.equal(cancel.params.taskId, taskId);
  assert.equal(responseTo(server, cancel).result?.resultType, 'complete');

  // Were the cell still sleeping, this call would queue behind it and become a task itself.
  const next = await execute(session, 'kept + 1', {}, { requestTimeoutMs: PROMPT_MS });
  assert.equal(next.kind, 'immediate', 'the cancelled cell is still running');
  const result = resultFromTaskOutcome(await next.result());
  assert.equal(result.structuredContent.result, '42', 'the session lost its state');
});

test('a cell past its timeout_seconds completes the task with a timeout error result',
  async (t) => {
    const { session } = await startTaskSession(t);
    const execution = await execute(session, 'import time\ntime.sleep(30)', { timeout_seconds: 2 });
    assert.equal(execution.kind, 'task');
    const { outcome, seen } = await settleRecorded(execution);
    t.diagnostic(`ext-tasks 0.2.2 on 2026-07-28, timeout: ${seen.join(' → ')}`);
    assert.equal(outcome.status, 'completed', seen.join(' → '));
    assert.equal(outcome.result.isError, true);
    assert.equal(outcome.result.structuredContent.status, 'timeout',
      JSON.stringify(outcome.result.structuredContent));
  });
