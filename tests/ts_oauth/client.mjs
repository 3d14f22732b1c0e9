// The official MCP TypeScript SDK as an OAuth client of our server, driven by
// tests/test_oauth_ts_sdk.py: discovery, dynamic registration, PKCE authorization (the test
// plays the person: it reads the authorization URL we print, signs in and consents, and writes
// back the redirect's query as one JSON line), the token exchange, then a tools/call.
//
//   node client.mjs MCP_URL REDIRECT_URI     (TS_SDK_DIR: where the pinned SDK is installed)
//
// Prints JSON lines: {"authorize": URL}, then {"stores": [...], ...} or {"error": message}.
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";

const require = createRequire(join(process.env.TS_SDK_DIR ?? ".", "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const { UnauthorizedError } = require("@modelcontextprotocol/sdk/client/auth.js");

const [serverUrl, redirectUrl] = process.argv.slice(2);
const emit = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// The SDK's OAuthClientProvider: everything a client keeps, here in memory.
class MemoryProvider {
  #state = randomBytes(16).toString("hex");
  clientInfo = undefined;
  savedTokens = undefined;
  verifier = undefined;

  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: "TypeScript SDK end-to-end",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() { return this.#state; }
  clientInformation() { return this.clientInfo; }
  saveClientInformation(info) { this.clientInfo = info; }
  tokens() { return this.savedTokens; }
  saveTokens(tokens) { this.savedTokens = tokens; }
  redirectToAuthorization(url) { emit({ authorize: url.toString() }); }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
}

async function main() {
  const provider = new MemoryProvider();
  const first = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
  try {
    await new Client({ name: "ts-oauth-e2e", version: "1.0.0" }).connect(first);
    throw new Error("the server let us in without signing in");
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  const { value } = await input.next();
  const redirect = JSON.parse(value ?? "{}");
  if (redirect.error) throw new Error(`authorization refused: ${redirect.error}`);
  if (redirect.state !== provider.state()) throw new Error("the state did not come back");
  await first.finishAuth(redirect.code);

  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
  const client = new Client({ name: "ts-oauth-e2e", version: "1.0.0" });
  await client.connect(transport);
  const result = await client.callTool({ name: "list_stores", arguments: {} });
  emit({
    stores: (result.structuredContent?.stores ?? []).map((store) => store.alias),
    is_error: result.isError ?? false,
    client_id: provider.clientInfo?.client_id,
    tokens: provider.savedTokens,
  });
  await client.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    emit({ error: String(error?.message ?? error) });
    process.exit(1);
  },
);
