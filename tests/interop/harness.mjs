// Shared helpers for the interop suites: spawn the real server through an official SDK client
// (1.x, the 2025 revisions, or 2.x, which negotiates 2026-07-28), record the wire traffic, and
// check results the way a strict client would.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Client as ModernClient } from '@modelcontextprotocol/client';
import { StdioClientTransport as ModernStdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';

export const BIN = process.env.MCPX_BIN;

export const CLIENT_INFO = { name: 'mcpx-interop', version: '1.0.0' };

const STDERR_KEEP = 64 * 1024;

// Wraps the stdio transport so tests can see every message on the wire (the Client hides ids,
// notifications it has no handler for, and the negotiated version), can pose as an older
// client by rewriting the protocol version it asks for in `initialize`, and can send requests
// the Client does not (`request`).
class RecordingTransport {
  constructor(inner, { requestVersion } = {}) {
    this.inner = inner;
    this.requestVersion = requestVersion;
    this.sent = [];
    this.received = [];
    this.errors = [];
    this.protocolVersion = undefined;
    this.rawPending = new Map();
    this.rawCount = 0;
  }

  // The 2.x Client tells stdio from HTTP by these two (on stdio a silent server/discover probe
  // means a legacy server). Not being its own StdioClientTransport, this one is probed in place
  // rather than on a sibling process, so the probe shows up in `sent`.
  get stderr() {
    return this.inner.stderr;
  }

  get pid() {
    return this.inner.pid;
  }

  async start() {
    this.inner.onmessage = (message, extra) => {
      this.received.push(message);
      const settle = message.method === undefined && this.rawPending.get(message.id);
      if (settle) {
        settle(message);
        return;
      }
      this.onmessage?.(message, extra);
    };
    this.inner.onerror = (error) => {
      this.errors.push(error);
      this.onerror?.(error);
    };
    this.inner.onclose = () => this.onclose?.();
    await this.inner.start();
  }

  async send(message, options) {
    if (this.requestVersion && message.method === 'initialize') {
      message = { ...message, params: { ...message.params, protocolVersion: this.requestVersion } };
    }
    this.sent.push(message);
    return this.inner.send(message, options);
  }

  close() {
    return this.inner.close();
  }

  setProtocolVersion(version) {
    this.protocolVersion = version;
  }

  // Sends `{method, params}` as a JSON-RPC request of its own and resolves with the response
  // (`{result}` or `{error}`), which the Client never sees: for requests a test must shape by
  // hand, and for what the Client cannot decode (ext-tasks' rawDispatch). String ids, like the
  // 2.x Client's own probe, cannot collide with the Client's numeric ones.
  request(request, { timeout = 60_000, signal } = {}) {
    const id = `raw-${++this.rawCount}`;
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.rawPending.delete(id);
      };
      const onAbort = () => {
        done();
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no response to ${request.method} (${id}) within ${timeout} ms`));
      }, timeout);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.rawPending.set(id, (response) => {
        done();
        resolve(response);
      });
      this.send({ jsonrpc: '2.0', id, ...request }).catch((error) => {
        done();
        reject(error);
      });
    });
  }
}

// A fresh workspace and state dir under one temporary root, and the command line that serves
// them. The caller removes `root`.
export function serverCommand(args = []) {
  assert.ok(BIN, 'MCPX_BIN must name the mcp-executor binary (run through run.sh)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpx-interop-'));
  const workspace = path.join(root, 'ws');
  const stateDir = path.join(root, 'state');
  fs.mkdirSync(workspace);
  fs.mkdirSync(stateDir);
  return {
    root,
    workspace,
    stateDir,
    command: BIN,
    args: ['serve', '--workspace', workspace, '--state-dir', stateDir,
      '--log-level', process.env.MCPX_INTEROP_LOG_LEVEL ?? 'warn', ...args],
  };
}

// Starts `mcp-executor serve` on a fresh workspace and state dir and connects an SDK Client.
// Options: env (extra environment for the server), args (extra CLI flags), listTools (default true:
// list tools once, as real clients do, so the SDK validates structuredContent against each
// tool's outputSchema), requestVersion (pose as a client asking that protocol revision),
// modern (connect the 2.x Client, which probes with server/discover and speaks 2026-07-28 when
// offered; `clientOptions` are added to its options).
export async function startServer(t, options = {}) {
  const { root, workspace, stateDir, command, args } = serverCommand(options.args);
  const Transport = options.modern ? ModernStdioClientTransport : StdioClientTransport;
  const inner = new Transport({ command, args, env: options.env ?? {}, stderr: 'pipe' });
  let stderr = '';
  inner.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
  });
  const transport = new RecordingTransport(inner, { requestVersion: options.requestVersion });
  const client = options.modern
    ? new ModernClient(CLIENT_INFO,
      { versionNegotiation: { mode: 'auto' }, ...options.clientOptions })
    : new Client(CLIENT_INFO);

  const server = {
    client,
    modern: options.modern ?? false,
    transport,
    workspace,
    stateDir,
    tools: new Map(),
    stderr: () => stderr,
    // The server process, while the transport owns it.
    child: () => inner._process,
  };

  let closed = false;
  server.close = async () => {
    if (closed) return;
    closed = true;
    await client.close();
  };
  t.after(async () => {
    await server.close();
    fs.rmSync(root, { recursive: true, force: true });
    // Anything on stdout that is not a JSON-RPC message shows up here as a parse error.
    assert.deepEqual(transport.errors.map(String), [],
      `transport errors (non-JSON on stdout?); server stderr:\n${stderr}`);
  });

  try {
    await client.connect(transport);
  } catch (error) {
    error.message += `\nserver stderr:\n${stderr}`;
    throw error;
  }
  if (options.listTools ?? true) {
    const { tools, nextCursor } = await client.listTools();
    assert.equal(nextCursor, undefined, 'without --tools-page-size all tools fit in one page');
    for (const tool of tools) server.tools.set(tool.name, tool);
  }
  return server;
}

// Follows nextCursor to the end (the 1.x SDK's listTools returns one page). Returns the pages.
export async function listToolPages(client) {
  const pages = [];
  let cursor;
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor });
    pages.push(page);
    cursor = page.nextCursor;
    assert.ok(pages.length <= 1000, 'tools/list pagination does not terminate');
  } while (cursor !== undefined);
  return pages;
}

export async function listAllResources(client) {
  const resources = [];
  let cursor;
  let pages = 0;
  do {
    const page = await client.listResources(cursor === undefined ? {} : { cursor });
    resources.push(...page.resources);
    cursor = page.nextCursor;
    assert.ok(++pages <= 1000, 'resources/list pagination does not terminate');
  } while (cursor !== undefined);
  return resources;
}

const validators = new AjvJsonSchemaValidator();

// Checks `value` against a tool's JSON Schema with the SDK's own validator (Ajv); throws when the
// schema itself does not compile.
export function assertMatchesSchema(schema, value, what) {
  const check = validators.getValidator(schema);
  const outcome = check(value);
  assert.ok(outcome.valid, `${what} does not match its schema: ${outcome.errorMessage}\n` +
    `value: ${JSON.stringify(value).slice(0, 2000)}`);
}

export function assertSchemaCompiles(schema, what) {
  try {
    validators.getValidator(schema);
  } catch (error) {
    assert.fail(`${what} does not compile: ${error.message}`);
  }
}

// tools/call through the SDK. Besides the SDK's own check, a successful result of a tool with an
// outputSchema must carry structuredContent that matches it (checked here too, so the test does
// not depend on which tools the SDK happened to cache).
export async function callTool(server, name, args, options) {
  const params = { name, arguments: args };
  const result = server.modern
    ? await server.client.callTool(params, options)
    : await server.client.callTool(params, undefined, options);
  assert.ok(Array.isArray(result.content), `${name}: result.content must be an array`);
  const tool = server.tools.get(name);
  if (tool?.outputSchema && !result.isError) {
    assert.ok(result.structuredContent, `${name} declares an outputSchema but returned no ` +
      `structuredContent: ${JSON.stringify(result).slice(0, 2000)}`);
    assertMatchesSchema(tool.outputSchema, result.structuredContent, `${name} structuredContent`);
  }
  return result;
}

// Like callTool, and fails with the server's own message when the result is an error.
export async function callOk(server, name, args, options) {
  const result = await callTool(server, name, args, options);
  assert.ok(!result.isError, `${name}(${JSON.stringify(args).slice(0, 200)}) failed: ` +
    `${allText(result)}`);
  return result;
}

export function allText(result) {
  return result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

// Rejects with the McpError the SDK throws; checks its JSON-RPC code.
export async function assertMcpError(promise, code, messagePattern) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.name, 'McpError', `expected an McpError, got ${error}`);
    assert.equal(error.code, code, `expected JSON-RPC code ${code}, got ${error.code}: ${error}`);
    if (messagePattern) assert.match(error.message, messagePattern);
    return true;
  });
}

// The tools/call request that sent `code` to execute_python, as it went on the wire.
export function sentToolCall(server, code) {
  const request = server.transport.sent.find(
    (m) => m.method === 'tools/call' && m.params?.arguments?.code === code);
  assert.ok(request, 'the tools/call request is not on the wire');
  return request;
}

// The server's response to a recorded request, as it came off the wire.
export function responseTo(server, request) {
  const response = server.transport.received.find((m) => m.id === request.id && !m.method);
  assert.ok(response, `no response to ${request.method} (id ${request.id})`);
  return response;
}
