// Tasks of the 2025-11-25 revision through the 1.x SDK's experimental task API
// (client.experimental.tasks): the server advertises tasks for tools/call, execute_python runs
// as a task the SDK polls (tasks/get) and collects (tasks/result), or cancels (tasks/cancel).
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';

import {
  CallToolResultSchema, CreateTaskResultSchema, RELATED_TASK_META_KEY,
} from '@modelcontextprotocol/sdk/types.js';

import {
  assertMcpError, callOk, responseTo, sentToolCall, startServer,
} from './harness.mjs';

const TASK_TOOLS = ['execute_python', 'install_package'];

// Far below the 30 s the cancelled cell would sleep (as in execute.test.mjs).
const PROMPT_MS = 15000;

function statusNotifications(server, taskId) {
  return server.transport.received.filter(
    (m) => m.method === 'notifications/tasks/status' && m.params.taskId === taskId);
}

// Drains an SDK task stream into a list of {type, status?, statusMessage?} for the record.
async function drain(stream, messages = []) {
  for await (const message of stream) messages.push(message);
  return messages;
}

function lifecycle(messages) {
  return messages.map((m) => (m.task
    ? `${m.type}:${m.task.status}${m.task.statusMessage ? ` (${m.task.statusMessage})` : ''}`
    : m.type)).join(' → ');
}

test('2025-11-25 advertises tasks for tools/call; two tools opt in; older revisions have none',
  async (t) => {
    const server = await startServer(t);
    assert.equal(server.transport.protocolVersion, '2025-11-25');
    // No tasks/list: on stdio there is no authorization context to scope a list by.
    assert.deepEqual(server.client.getServerCapabilities().tasks,
      { cancel: {}, requests: { tools: { call: {} } } });
    for (const [name, tool] of server.tools) {
      assert.deepEqual(tool.execution,
        TASK_TOOLS.includes(name) ? { taskSupport: 'optional' } : undefined, name);
    }
    // A task for a tool that does not take one.
    await assertMcpError(server.client.request(
      { method: 'tools/call', params: { name: 'list_sessions', arguments: {} } },
      CreateTaskResultSchema, { task: { ttl: 60_000 } }), -32601);

    const older = await startServer(t, { requestVersion: '2025-06-18' });
    assert.equal(older.client.getServerCapabilities().tasks, undefined);
    for (const tool of older.tools.values()) assert.equal(tool.execution, undefined, tool.name);
  });

test('a long cell runs as a task the SDK polls to completion', async (t) => {
  const server = await startServer(t);
  await callOk(server, 'execute_python', { code: 'import time' });
  const code = 'for i in range(4):\n    print(f"step {i}")\n    time.sleep(1)\n"done"';
  const progress = [];
  // No explicit task: the SDK adds one itself for a tool whose taskSupport it has seen.
  const messages = await drain(server.client.experimental.tasks.callToolStream(
    { name: 'execute_python', arguments: { code } }, CallToolResultSchema,
    { onprogress: (p) => progress.push(p) }));
  await tick();
  t.diagnostic(`SDK 1.x, 2025-11-25: ${lifecycle(messages)}`);

  const [created, ...rest] = messages;
  assert.equal(created.type, 'taskCreated', lifecycle(messages));
  const { taskId } = created.task;
  assert.equal(created.task.status, 'working');
  assert.ok(Number.isInteger(created.task.pollInterval), JSON.stringify(created.task));
  const result = rest.at(-1);
  assert.equal(result.type, 'result', lifecycle(messages));
  const polled = rest.slice(0, -1);
  assert.ok(polled.length >= 2, `a 4 s cell polled ${polled.length} times`);
  assert.ok(polled.every((m) => m.type === 'taskStatus' && m.task.taskId === taskId));
  assert.equal(polled.at(-1).task.status, 'completed');
  assert.ok(polled.slice(0, -1).every((m) => m.task.status === 'working'), lifecycle(messages));

  assert.equal(result.result.isError, false);
  assert.equal(result.result.structuredContent.result, "'done'");
  assert.equal(result.result.structuredContent.stdout, 'step 0\nstep 1\nstep 2\nstep 3\n');
  assert.deepEqual(result.result._meta?.[RELATED_TASK_META_KEY], { taskId });

  // On the wire: task-augmented call, then a CreateTaskResult in place of the result.
  const request = sentToolCall(server, code);
  assert.deepEqual(request.params.task, {});
  const response = responseTo(server, request);
  assert.equal(response.result.task?.taskId, taskId, JSON.stringify(response));
  assert.equal(response.result.content, undefined);

  // Status notifications end with the terminal one; the cell's output rides in statusMessage
  // (of a polled task or a notification).
  const notified = statusNotifications(server, taskId);
  t.diagnostic(`notifications/tasks/status: ${notified.map((m) =>
    `${m.params.status}${m.params.statusMessage ? ` (${m.params.statusMessage})` : ''}`)
    .join(' → ')}`);
  assert.equal(notified.at(-1)?.params.status, 'completed', JSON.stringify(notified));
  const statusMessages = [...polled.map((m) => m.task), ...notified.map((m) => m.params)]
    .map((task) => task.statusMessage ?? '');
  assert.match(statusMessages.join('\n'), /step \d/, lifecycle(messages));

  // Progress for the original token goes on after the task was created.
  const token = request.params._meta.progressToken;
  const createdAt = server.transport.received.indexOf(response);
  const later = server.transport.received.slice(createdAt).filter(
    (m) => m.method === 'notifications/progress' && m.params.progressToken === token);
  assert.ok(later.length > 0, 'no progress for the task after it was created');
  assert.match(progress.map((p) => p.message ?? '').join('\n'), /step \d/);
});

test('tasks/result blocks until the task ends', async (t) => {
  const server = await startServer(t);
  await callOk(server, 'execute_python', { code: 'import time' });
  const { task } = await server.client.request(
    { method: 'tools/call', params: { name: 'execute_python', arguments: { code: 'time.sleep(2)\n7 * 6' } } },
    CreateTaskResultSchema, { task: { ttl: 60_000 } });
  assert.equal(task.status, 'working');
  assert.equal(task.ttl, 60_000);
  const result = await server.client.experimental.tasks.getTaskResult(task.taskId,
    CallToolResultSchema);
  assert.equal(result.structuredContent.result, '42');
  assert.deepEqual(result._meta?.[RELATED_TASK_META_KEY], { taskId: task.taskId });
  assert.equal((await server.client.experimental.tasks.getTask(task.taskId)).status, 'completed');
});

test('tasks/cancel interrupts the cell; the session keeps its variables', async (t) => {
  const server = await startServer(t);
  await callOk(server, 'execute_python', { code: 'import time\nkept = 41' });
  const code = 'time.sleep(30)\nkept = 0';
  const stream = server.client.experimental.tasks.callToolStream(
    { name: 'execute_python', arguments: { code } }, CallToolResultSchema,
    { task: { ttl: 60_000 } });
  const messages = [(await stream.next()).value];
  assert.equal(messages[0].type, 'taskCreated', JSON.stringify(messages[0]));
  const { taskId } = messages[0].task;

  const cancelled = await server.client.experimental.tasks.cancelTask(taskId);
  assert.equal(cancelled.taskId, taskId);
  assert.equal(cancelled.status, 'cancelled');
  await drain(stream, messages);
  t.diagnostic(`SDK 1.x, 2025-11-25, cancelled: tasks/cancel → ${cancelled.status}; ` +
    `stream: ${lifecycle(messages)}`);
  assert.equal(messages.at(-1).type, 'error', lifecycle(messages));
  assert.match(String(messages.at(-1).error), /cancelled/);

  const after = await callOk(server, 'execute_python', { code: 'kept + 1' },
    { timeout: PROMPT_MS });
  assert.equal(after.structuredContent.result, '42',
    'the cancelled cell went on running, or the session lost its state');
  assert.equal((await server.client.experimental.tasks.getTask(taskId)).status, 'cancelled');
  await tick();
  assert.equal(statusNotifications(server, taskId).at(-1)?.params.status, 'cancelled');

  // A terminal task cannot be cancelled again.
  await assertMcpError(server.client.experimental.tasks.cancelTask(taskId), -32602);
});
