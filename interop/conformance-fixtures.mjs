// Fixture tools/resources/prompts that the server scenarios of
// @modelcontextprotocol/conformance call by name (test_simple_text, test://static-text,
// test_simple_prompt, ...). The scenario descriptions (`conformance list` and the
// scenario sources) fix the names and the expected shapes; the code here is ours and
// only exists so that the conformance client has something to talk to behind the
// gateway. The point of running the scenarios is differential: every scenario that
// passes against the server directly must pass through caddy-mcp-auth too.
import { ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ElicitResultSchema, CreateMessageResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

// 1x1 PNG and a minimal WAV, base64.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ content: [{ type: 'text', text: t }] });

async function elicit(extra, message, requestedSchema) {
  try {
    const r = await extra.sendRequest({ method: 'elicitation/create', params: { message, requestedSchema } }, ElicitResultSchema);
    return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  } catch (err) {
    return text(`Elicitation not supported or error: ${err.message}`);
  }
}

export function registerConformanceFixtures(mcp) {
  const log = (level, data) =>
    mcp.server.notification({ method: 'notifications/message', params: { level, logger: 'interop', data } }).catch(() => {});

  // ---- tools
  mcp.registerTool('test_simple_text', { description: 'simple text' }, async () => text('This is a simple text response for testing.'));
  mcp.registerTool('test_image_content', { description: 'image' }, async () => ({
    content: [{ type: 'image', data: PNG, mimeType: 'image/png' }],
  }));
  mcp.registerTool('test_audio_content', { description: 'audio' }, async () => ({
    content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }],
  }));
  mcp.registerTool('test_embedded_resource', { description: 'embedded resource' }, async () => ({
    content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }],
  }));
  mcp.registerTool('test_multiple_content_types', { description: 'text + image + resource' }, async () => ({
    content: [
      { type: 'text', text: 'Multiple content types test:' },
      { type: 'image', data: PNG, mimeType: 'image/png' },
      { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
    ],
  }));
  mcp.registerTool('test_tool_with_logging', { description: 'logs three messages', inputSchema: {} }, async (_a, extra) => {
    for (const data of ['Tool execution started', 'Tool processing data', 'Tool execution completed']) {
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data } });
      await sleep(30);
    }
    return text('Tool with logging executed successfully');
  });
  mcp.registerTool('test_tool_with_progress', { description: 'progress 0/50/100', inputSchema: {} }, async (_a, extra) => {
    const progressToken = extra._meta?.progressToken ?? 0;
    for (const progress of [0, 50, 100]) {
      await extra.sendNotification({
        method: 'notifications/progress',
        params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` },
      });
      await sleep(30);
    }
    return text(String(progressToken));
  });
  mcp.registerTool('test_error_handling', { description: 'always fails' }, async () => {
    throw new Error('This tool intentionally returns an error for testing');
  });
  mcp.registerTool('test_reconnection', { description: 'closes its SSE stream mid-call', inputSchema: {} }, async (_a, extra) => {
    extra.closeSSEStream?.();
    await sleep(100);
    return text('Reconnection test completed successfully.');
  });
  mcp.registerTool(
    'test_sampling',
    { description: 'asks the client to sample', inputSchema: { prompt: z.string() } },
    async ({ prompt }, extra) => {
      try {
        const r = await extra.sendRequest(
          { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 } },
          CreateMessageResultSchema,
        );
        return text(`LLM response: ${r.content?.text ?? 'No response'}`);
      } catch (err) {
        return text(`Sampling not supported or error: ${err.message}`);
      }
    },
  );
  mcp.registerTool('test_elicitation', { description: 'asks the user', inputSchema: { message: z.string() } }, async ({ message }, extra) =>
    elicit(extra, message, {
      type: 'object',
      properties: { response: { type: 'string', description: "User's response" } },
      required: ['response'],
    }),
  );
  mcp.registerTool('test_elicitation_sep1034_defaults', { description: 'elicitation with defaults', inputSchema: {} }, async (_a, extra) =>
    elicit(extra, 'Please review and update the form fields with defaults', {
      type: 'object',
      properties: {
        name: { type: 'string', description: 'User name', default: 'John Doe' },
        age: { type: 'integer', description: 'User age', default: 30 },
        score: { type: 'number', description: 'User score', default: 95.5 },
        status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
        verified: { type: 'boolean', description: 'Verification status', default: true },
      },
      required: [],
    }),
  );
  mcp.registerTool('test_elicitation_sep1330_enums', { description: 'elicitation with enum variants', inputSchema: {} }, async (_a, extra) =>
    elicit(extra, 'Please select options from the enum fields', {
      type: 'object',
      properties: {
        untitledSingle: { type: 'string', description: 'Select one option', enum: ['option1', 'option2', 'option3'] },
        titledSingle: {
          type: 'string',
          description: 'Select one option with titles',
          oneOf: [
            { const: 'value1', title: 'First Option' },
            { const: 'value2', title: 'Second Option' },
            { const: 'value3', title: 'Third Option' },
          ],
        },
        legacyEnum: { type: 'string', description: 'Select one option (legacy)', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
        untitledMulti: { type: 'array', description: 'Select multiple options', minItems: 1, maxItems: 3, items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
        titledMulti: {
          type: 'array',
          description: 'Select multiple options with titles',
          minItems: 1,
          maxItems: 3,
          items: { anyOf: [{ const: 'value1', title: 'First Choice' }, { const: 'value2', title: 'Second Choice' }, { const: 'value3', title: 'Third Choice' }] },
        },
      },
      required: [],
    }),
  );
  mcp.registerTool(
    'json_schema_2020_12_tool',
    {
      description: 'JSON Schema 2020-12 input schema (SEP-1613)',
      inputSchema: { name: z.string().optional(), address: z.object({ street: z.string().optional(), city: z.string().optional() }).optional() },
    },
    async (args) => text(`JSON Schema 2020-12 tool called with: ${JSON.stringify(args)}`),
  );

  // ---- resources
  mcp.registerResource('static-text', 'test://static-text', { title: 'Static Text Resource', mimeType: 'text/plain' }, async () => ({
    contents: [{ uri: 'test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
  }));
  mcp.registerResource('static-binary', 'test://static-binary', { title: 'Static Binary Resource', mimeType: 'image/png' }, async () => ({
    contents: [{ uri: 'test://static-binary', mimeType: 'image/png', blob: PNG }],
  }));
  mcp.registerResource(
    'template',
    new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { title: 'Resource Template', mimeType: 'application/json' },
    async (uri, { id }) => ({
      contents: [{ uri: uri.toString(), mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }],
    }),
  );
  mcp.registerResource('watched-resource', 'test://watched-resource', { title: 'Watched Resource', mimeType: 'text/plain' }, async () => ({
    contents: [{ uri: 'test://watched-resource', mimeType: 'text/plain', text: 'Watched resource content' }],
  }));
  const subscriptions = new Set();
  mcp.server.setRequestHandler(z.object({ method: z.literal('resources/subscribe') }).passthrough(), async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  mcp.server.setRequestHandler(z.object({ method: z.literal('resources/unsubscribe') }).passthrough(), async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  // ---- prompts
  mcp.registerPrompt('test_simple_prompt', { title: 'Simple Test Prompt', description: 'Simple Test Prompt' }, async () => ({
    messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }],
  }));
  mcp.registerPrompt('test_prompt_with_arguments', { title: 'Prompt With Arguments', description: 'Prompt With Arguments', argsSchema: { arg1: z.string(), arg2: z.string() } }, async ({ arg1, arg2 }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }],
  }));
  mcp.registerPrompt('test_prompt_with_embedded_resource', { title: 'Prompt With Embedded Resource', description: 'Prompt With Embedded Resource', argsSchema: { resourceUri: z.string() } }, async ({ resourceUri }) => ({
    messages: [
      { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
    ],
  }));
  mcp.registerPrompt('test_prompt_with_image', { title: 'Prompt With Image', description: 'Prompt With Image' }, async () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
    ],
  }));

  // ---- logging / completion
  mcp.server.setRequestHandler(z.object({ method: z.literal('logging/setLevel') }).passthrough(), async (req) => {
    log('info', `Log level set to: ${req.params.level}`);
    return {};
  });
  mcp.server.setRequestHandler(z.object({ method: z.literal('completion/complete') }).passthrough(), async () => ({
    completion: { values: [], total: 0, hasMore: false },
  }));

  // ---- SEP-1613: list json_schema_2020_12_tool with a raw 2020-12 schema
  const listTools = mcp.server._requestHandlers?.get('tools/list');
  if (listTools) {
    mcp.server._requestHandlers.set('tools/list', async (req, extra) => {
      const r = await listTools(req, extra);
      for (const t of r.tools ?? []) {
        if (t.name === 'json_schema_2020_12_tool') {
          t.inputSchema = {
            $schema: 'https://json-schema.org/draft/2020-12/schema',
            type: 'object',
            $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
            properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
            additionalProperties: false,
          };
        }
      }
      return r;
    });
  }
}
