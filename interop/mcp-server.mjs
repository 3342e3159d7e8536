// MCP server for the interop suite, built on the official TypeScript SDK
// (@modelcontextprotocol/sdk) over Streamable HTTP, mounted the way the SDK's own
// examples do it (createMcpExpressApp + StreamableHTTPServerTransport, one transport
// per session).
//
//   node mcp-server.mjs [port]     (or MCP_PORT=...; 0 = let the OS pick)
//
// Prints "MCP ready http://127.0.0.1:<port>/mcp" once listening.
//
// Tools:
//   echo {message}      returns the message
//   whoami              returns the X-User request header it received (set by the gateway)
//   admin_action        returns "admin action done" (the gateway guards it with mcp:admin)
//   stream {count}      sends `count` progress notifications (SSE) before returning
//   headers             returns the request headers it saw (to check what the gateway forwards)
// plus the fixtures that @modelcontextprotocol/conformance's server scenarios call
// (see conformance-fixtures.mjs).
//
// Environment:
//   MCP_HOST            listen host (default 127.0.0.1)
//   MCP_ALLOWED_HOSTS   comma separated hostnames for the SDK's Host-header check
//                       (default: the SDK's localhost rule: localhost, 127.0.0.1, [::1])
//   MCP_STATELESS=1     stateless mode (no Mcp-Session-Id, fresh server per request)
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { registerConformanceFixtures } from './conformance-fixtures.mjs';

const host = process.env.MCP_HOST || '127.0.0.1';
const port = Number(process.argv[2] ?? process.env.MCP_PORT ?? 0);
const stateless = process.env.MCP_STATELESS === '1';
const allowedHosts = process.env.MCP_ALLOWED_HOSTS ? process.env.MCP_ALLOWED_HOSTS.split(',') : undefined;

function header(extra, name) {
  const h = extra.requestInfo?.headers ?? {};
  const v = h[name] ?? h[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

function getServer() {
  const server = new McpServer(
    { name: 'caddy-mcp-auth-interop-server', version: '1.0.0' },
    { capabilities: { logging: {}, resources: { subscribe: true }, prompts: {}, completions: {} } },
  );

  server.registerTool(
    'echo',
    { description: 'Echo the message back', inputSchema: { message: z.string() } },
    async ({ message }) => ({ content: [{ type: 'text', text: message }] }),
  );

  server.registerTool('whoami', { description: 'Report the X-User header the server received', inputSchema: {} }, async (_args, extra) => {
    const u = header(extra, 'x-user');
    return { content: [{ type: 'text', text: u === undefined ? '(no x-user header)' : String(u) }] };
  });

  server.registerTool('admin_action', { description: 'An action the gateway reserves for mcp:admin', inputSchema: {} }, async () => ({
    content: [{ type: 'text', text: 'admin action done' }],
  }));

  server.registerTool(
    'stream',
    {
      description: 'Send progress notifications over SSE, then return',
      inputSchema: { count: z.number().int().min(1).max(50).optional(), delayMs: z.number().int().min(0).max(2000).optional() },
    },
    async ({ count = 5, delayMs = 50 }, extra) => {
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= count; i++) {
        if (token !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: i, total: count, message: `step ${i}/${count}` },
          });
        }
        await new Promise((r) => setTimeout(r, delayMs));
      }
      return { content: [{ type: 'text', text: `streamed ${count}` }] };
    },
  );

  server.registerTool('headers', { description: 'Return the request headers the server received', inputSchema: {} }, async (_args, extra) => ({
    content: [{ type: 'text', text: JSON.stringify(extra.requestInfo?.headers ?? {}) }],
  }));

  registerConformanceFixtures(server);
  return server;
}

const app = createMcpExpressApp(allowedHosts ? { host, allowedHosts } : { host });
const sessions = new Map();

function jsonRpcError(res, status, code, message) {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });
}

app.post('/mcp', async (req, res) => {
  try {
    if (stateless) {
      const server = getServer();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => {
        transport.close();
        server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
      return;
    }
    const sid = req.headers['mcp-session-id'];
    if (sid) {
      const transport = sessions.get(sid);
      if (!transport) return jsonRpcError(res, 404, -32001, 'Session not found');
      await transport.handleRequest(req, res, req.body);
      return;
    }
    if (!isInitializeRequest(req.body)) return jsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new InMemoryEventStore(),
      retryInterval: 1000, // SEP-1699 priming event / retry hint
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await getServer().connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (err) {
    console.error('MCP POST error', err);
    if (!res.headersSent) jsonRpcError(res, 500, -32603, 'Internal server error');
  }
});

async function sessionRequest(req, res) {
  if (stateless) return jsonRpcError(res, 405, -32000, 'Method not allowed');
  const sid = req.headers['mcp-session-id'];
  const transport = sid && sessions.get(sid);
  if (!sid) return jsonRpcError(res, 400, -32000, 'Missing session ID');
  if (!transport) return jsonRpcError(res, 404, -32001, 'Session not found');
  try {
    await transport.handleRequest(req, res);
  } catch (err) {
    console.error(`MCP ${req.method} error`, err);
    if (!res.headersSent) jsonRpcError(res, 500, -32603, 'Internal server error');
  }
}
app.get('/mcp', sessionRequest);
app.delete('/mcp', sessionRequest);

const httpServer = app.listen(port, host, (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`MCP ready http://${host}:${httpServer.address().port}/mcp`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
