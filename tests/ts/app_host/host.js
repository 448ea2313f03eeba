// A minimal MCP Apps host, built on the official SDK's AppBridge: it connects to the server
// over Streamable HTTP (same origin: the test's server proxies /mcp), declares the MCP Apps
// extension, calls a tool, reads the view its `_meta.ui.resourceUri` names, mounts it in a
// sandboxed iframe (scripts only: an opaque origin, no access to this page) under the CSP its
// `_meta.ui.csp` asks for, and passes it the tool's input and result. Bundled by esbuild for the
// browser (tests/ts/app_e2e.mjs); nothing is fetched from anywhere but this page's origin.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { AppBridge, PostMessageTransport, getToolUiResourceUri } from "@modelcontextprotocol/ext-apps/app-bridge";

const UI = "io.modelcontextprotocol/ui";
const MIME = "text/html;profile=mcp-app";

/** The CSP a host derives from a view's `_meta.ui.csp`: nothing beyond the declared domains. */
function cspFor(csp = {}) {
  const list = (domains) => (domains && domains.length ? domains.join(" ") : "");
  return [
    "default-src 'none'",
    "script-src 'unsafe-inline'",
    "style-src 'unsafe-inline'",
    `img-src data: ${list(csp.resourceDomains)}`.trim(),
    `connect-src ${list(csp.connectDomains) || "'none'"}`,
    `frame-src ${list(csp.frameDomains) || "'none'"}`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}

const state = { client: null, tools: [], opened: [], modelContext: [], cspViolations: [], displayModes: [], downloads: [] };

async function connect() {
  const client = new Client(
    { name: "runcomfy-e2e-host", version: "1.0.0" },
    { capabilities: { extensions: { [UI]: { mimeTypes: [MIME] } } } },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.href)));
  state.client = client;
  state.tools = (await client.listTools()).tools;
  return state.tools.map((t) => ({ name: t.name, ui: t._meta?.ui ?? null }));
}

/**
 * One chat turn: calls `name` with `args`, shows its view with the result, in a container
 * `width` pixels wide (told to the view as hostContext.containerDimensions). The view may ask
 * for fullscreen: the host grants it by filling the page with the iframe.
 */
async function run(slot, name, args, width = 640) {
  const tool = state.tools.find((t) => t.name === name);
  if (!tool) throw new Error(`no tool ${name}`);
  const uri = getToolUiResourceUri(tool);
  if (!uri) throw new Error(`${name} links no view`);
  const result = await state.client.callTool({ name, arguments: args });

  const read = await state.client.readResource({ uri });
  const view = read.contents[0];
  if (view.mimeType !== MIME) throw new Error(`view mime type ${view.mimeType}`);
  const csp = cspFor(view._meta?.ui?.csp);
  const html = view.text.replace(/<head>/i, `<head><meta http-equiv="Content-Security-Policy" content="${csp}">`);

  const turn = document.createElement("div");
  turn.className = "turn";
  turn.id = `turn-${slot}`;
  const title = document.createElement("h2");
  title.textContent = `${name}(${JSON.stringify(args)})`;
  const iframe = document.createElement("iframe");
  iframe.name = `view-${slot}`;
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.style.width = `${width}px`;
  turn.append(title, iframe);
  document.getElementById("turns").append(turn);

  const inline = {
    theme: "light",
    displayMode: "inline",
    availableDisplayModes: ["inline", "fullscreen"],
    containerDimensions: { width, maxHeight: 900 },
  };
  const bridge = new AppBridge(
    state.client,
    { name: "runcomfy-e2e-host", version: "1.0.0" },
    { openLinks: {}, downloadFile: {}, serverTools: {}, serverResources: {}, logging: {}, updateModelContext: { text: {} } },
    { hostContext: inline },
  );
  bridge.onrequestdisplaymode = async ({ mode }) => {
    state.displayModes.push({ slot, mode });
    if (mode === "fullscreen") {
      turn.classList.add("fullscreen");
      bridge.setHostContext({ ...inline, displayMode: "fullscreen", containerDimensions: { width: innerWidth, height: innerHeight } });
    } else {
      turn.classList.remove("fullscreen");
      bridge.setHostContext(inline);
    }
    return { mode: mode === "fullscreen" ? "fullscreen" : "inline" };
  };
  bridge.ondownloadfile = async (params) => {
    state.downloads.push({ slot, ...params });
    return {};
  };
  bridge.onopenlink = async ({ url }) => {
    state.opened.push(url);
    return {};
  };
  bridge.onupdatemodelcontext = async (params) => {
    state.modelContext.push(params);
    return {};
  };
  bridge.onsizechange = ({ height }) => {
    if (height && !turn.classList.contains("fullscreen")) iframe.style.height = `${Math.min(Math.max(height + 4, 160), 1400)}px`;
  };
  const initialized = new Promise((resolve) => (bridge.oninitialized = resolve));
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  iframe.srcdoc = html;
  await initialized;
  await bridge.sendToolInput({ arguments: args });
  await bridge.sendToolResult(result);
  return { result: result.structuredContent ?? null, isError: result.isError ?? false };
}

window.host = { connect, run, state };
