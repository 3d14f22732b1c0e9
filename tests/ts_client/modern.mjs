// The official MCP TypeScript client (v2, @modelcontextprotocol/client) against our server,
// driven by tests/test_mcp_ts_client.py: connect in the given negotiation mode, list tools,
// call a tool twice (the second from the server's cache), read a resource, list prompts, and
// read a resource that does not exist.
//
//   node modern.mjs MCP_URL MODE     (MODE: 2026-07-28 to pin it, auto or legacy;
//                                     MCP_TOKEN: the bearer key; TS_CLIENT_DIR: the install)
//
// Prints one JSON line: what the client negotiated and saw, or {"error": message}.
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.TS_CLIENT_DIR ?? ".", "package.json"));
const { Client, StreamableHTTPClientTransport } = require("@modelcontextprotocol/client");

const [serverUrl, mode] = process.argv.slice(2);
const emit = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const negotiation = mode === "auto" || mode === "legacy" ? { mode } : { mode: { pin: mode } };

async function main() {
  const client = new Client(
    { name: "orderdesk-mcp ts-client test", version: "1.0.0" },
    { versionNegotiation: negotiation },
  );
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), {
    requestInit: { headers: { Authorization: `Bearer ${process.env.MCP_TOKEN}` } },
  });
  await client.connect(transport);
  try {
    const tools = await client.listTools();
    const listed = await client.callTool({ name: "list_orders", arguments: { limit: 1 } });
    const orderId = String(listed.structuredContent.orders[0].id);
    const first = await client.callTool({ name: "get_order", arguments: { order_id: orderId } });
    const again = await client.callTool({ name: "get_order", arguments: { order_id: orderId } });
    const store = await client.readResource({ uri: "orderdesk://demo/store" });
    const prompts = await client.listPrompts();
    let missing = null;
    try {
      await client.readResource({ uri: "orderdesk://demo/orders/999999999" });
    } catch (error) {
      missing = { code: error.code, message: error.message };
    }
    emit({
      version: client.getNegotiatedProtocolVersion(),
      era: client.getProtocolEra(),
      server: client.getServerVersion()?.name ?? null,
      tools: tools.tools.map((tool) => tool.name),
      tools_cache: { ttlMs: tools.ttlMs ?? null, cacheScope: tools.cacheScope ?? null },
      order_id: orderId,
      orders: [first.structuredContent, again.structuredContent],
      is_error: Boolean(first.isError || again.isError),
      store: JSON.parse(store.contents[0].text),
      store_cache_scope: store.cacheScope ?? null,
      prompts: prompts.prompts.map((prompt) => prompt.name),
      missing,
    });
  } finally {
    await client.close();
  }
}

main().catch((error) => {
  emit({ error: String(error?.stack ?? error) });
  process.exit(1);
});
