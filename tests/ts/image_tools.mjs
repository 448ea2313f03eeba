// Every image tool through the official TypeScript SDK's client, the one Claude Code and most
// hosts are built on, once introducing itself as `claude-code` and once as another client. The
// SDK refuses (-32600) a result without structuredContent from a tool whose listed outputSchema
// it has compiled, and validates the structuredContent it gets: each call must come back without
// such an error, and every waiting tool must bring the image itself.
//
// Usage: node tests/ts/image_tools.mjs [path/to/runcomfy-mcp]   (default: see bin.mjs).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { binary } from "./bin.mjs";

const bin = process.argv[2] ?? binary();
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
};
const text = (result) => result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
const images = (result) => result.content.filter((c) => c.type === "image" && c.mimeType?.startsWith("image/") && c.data);

async function asClient(name) {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "runcomfy-ts-"));
  const transport = new StdioClientTransport({
    command: bin,
    args: ["serve", "--simulate"],
    // A journal of its own (list_jobs reads it), never the user's.
    env: { ...process.env, RUST_LOG: "warn", RUNCOMFY_STATE_DIR: state },
    stderr: "pipe",
  });
  let serverLog = "";
  transport.stderr?.on("data", (chunk) => (serverLog += chunk));
  const client = new Client({ name, version: "0.0.0" });
  try {
    await client.connect(transport);
    // As a host does: the list first, which makes the SDK compile every output schema.
    const { tools } = await client.listTools();
    const schemaOf = (tool) => tools.find((t) => t.name === tool)?.outputSchema;
    // Each call as a host makes it; an SDK validation error is thrown, and fails the run.
    const call = async (tool, args) => {
      try {
        const result = await client.callTool({ name: tool, arguments: args });
        check(!result.isError, `${name}: ${tool} answered an error: ${text(result)}`);
        // Whichever way it comes, what was declared is what was sent.
        check(
          result.isError || !schemaOf(tool) || result.structuredContent,
          `${name}: ${tool} declared an output schema but sent no structuredContent`,
        );
        return result;
      } catch (error) {
        failures.push(`${name}: ${tool} failed in the SDK client: ${error}`);
        return { content: [] };
      }
    };

    const waited = await call("generate_image_and_wait", { prompt: "a lighthouse at dusk", size: "1024x1024" });
    check(images(waited).length >= 1, `${name}: generate_image_and_wait brought no image`);
    // The text says it first, for every client: "Job ID: succeeded."
    const id = /^Job ([\w-]+):/.exec(text(waited))?.[1];
    check(Boolean(id), `${name}: no request_id in ${text(waited)}`);
    const result = await call("get_result", { request_id: id });
    check(images(result).length >= 1, `${name}: get_result brought no image`);
    const model = await call("run_model", {
      model_id: "google/nano-banana-2-lite/text-to-image",
      input: { prompt: "a lighthouse at dusk" },
    });
    check(images(model).length >= 1, `${name}: run_model brought no image`);
    // The tools that start or follow a job without an image: still no validation error.
    const submitted = await call("generate_image", { prompt: "a lighthouse at dawn", size: "1024x1024" });
    const started = /"([0-9a-f-]{36})"/.exec(text(submitted))?.[1];
    if (started) {
      await call("check_status", { request_id: started });
      await call("cancel_request", { request_id: started });
    }
    await call("list_jobs", {});

    const declared = ["generate_image_and_wait", "get_result", "run_model"].filter((t) => schemaOf(t));
    if (name === "claude-code") {
      // It gets the images without structuredContent, so it is promised no schema for them.
      check(declared.length === 0, `${name}: output schemas declared for ${declared}`);
      check(!waited.structuredContent, `${name}: structuredContent sent next to the images`);
    } else {
      check(declared.length === 3, `${name}: only ${declared} declare an output schema`);
      check(Boolean(waited.structuredContent), `${name}: no structuredContent`);
    }
    console.log(`${name}: ${tools.length} tools listed, ${declared.length} image tools with an output schema`);
  } catch (error) {
    process.stderr.write(serverLog);
    failures.push(`${name}: ${error}`);
  } finally {
    await client.close();
    fs.rmSync(state, { recursive: true, force: true });
  }
}

await asClient("claude-code");
await asClient("runcomfy-mcp-ts-check");
for (const failure of failures) console.error(`FAILED ${failure}`);
console.log(failures.length === 0 ? "image-tools: passed" : `image-tools: FAILED (${failures.length})`);
process.exit(failures.length === 0 ? 0 : 1);
