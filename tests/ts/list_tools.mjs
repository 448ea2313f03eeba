// Lists the tools the way most MCP hosts do: with the official TypeScript SDK's client over stdio.
// `listTools` compiles every output schema with the SDK's ajv validator, which warns on each
// `format` it does not know (schemars' `uint32`, `double`, ...). Any such warning fails the check.
//
// Usage: node tests/ts/list_tools.mjs [path/to/runcomfy-mcp]   (default: see bin.mjs). Needs
// `npm ci` in tests/ts (scripts/setup does it).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { binary } from "./bin.mjs";

const bin = process.argv[2] ?? binary();

// Everything the SDK (and ajv through it) says while listing, kept to be searched.
const said = [];
for (const level of ["log", "info", "warn", "error"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    said.push(args.map(String).join(" "));
    original(...args);
  };
}

const transport = new StdioClientTransport({
  command: bin,
  args: ["serve", "--simulate", "--no-journal"],
  env: { ...process.env, RUST_LOG: "warn" },
  stderr: "pipe",
});
let serverLog = "";
transport.stderr?.on("data", (chunk) => (serverLog += chunk));

const client = new Client({ name: "runcomfy-mcp-ts-check", version: "0.0.0" });
let tools;
try {
  await client.connect(transport);
  ({ tools } = await client.listTools());
} catch (error) {
  process.stderr.write(serverLog);
  console.error(`tools/list through the TypeScript SDK failed: ${error}`);
  process.exit(1);
} finally {
  await client.close();
}

const withOutput = tools.filter((t) => t.outputSchema).length;
const unknown = said.filter((line) => /unknown format/i.test(line));
console.log(`TypeScript SDK: ${tools.length} tools listed, ${withOutput} output schemas compiled, ${unknown.length} "unknown format" warnings`);
process.exit(unknown.length === 0 ? 0 : 1);
