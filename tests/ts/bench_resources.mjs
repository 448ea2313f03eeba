// Benchmark, not a test (no suite runs it): how long a result resource read takes, over stdio
// with the official TypeScript SDK's client against the built-in simulator, for each size the
// simulator renders: five reads each of an image's preview (the first one makes it; later ones
// come from the server's preview cache) and of the original.
//
// Usage: node tests/ts/bench_resources.mjs [path/to/runcomfy-mcp]   (default: the release build, see bin.mjs)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { binary } from "./bin.mjs";
const bin = process.argv[2] ?? binary("release");
const t = new StdioClientTransport({ command: bin, args: ["serve", "--simulate", "--no-journal"], env: { ...process.env, RUST_LOG: "warn" } });
const c = new Client({ name: "measure", version: "0" });
await c.connect(t);
for (const size of ["1024x1024", "2048x2048", "4096x4096"]) {
  const r = await c.callTool({ name: "generate_image_and_wait", arguments: { prompt: "x", size, force_single: true } });
  const id = r.structuredContent.request_id;
  for (const kind of ["previews", "images"]) {
    const times = [];
    let bytes = 0;
    for (let i = 0; i < 5; i++) {
      const s = performance.now();
      const read = await c.readResource({ uri: `runcomfy://jobs/${id}/${kind}/1` });
      times.push(performance.now() - s);
      bytes = read.contents[0].blob.length;
    }
    times.sort((a, b) => a - b);
    console.log(`${size} ${kind}: median ${times[2].toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${times[4].toFixed(0)}), ${bytes} base64 chars`);
  }
}
await c.close();
