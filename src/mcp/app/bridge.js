// The bridge: JSON-RPC 2.0 over postMessage with the host (window.parent), as the MCP Apps spec
// describes it without an SDK (the view loads no code from anywhere).
const bridge = (() => {
  let nextId = 1;
  const pending = new Map();
  const handlers = {};
  const post = (message) => window.parent.postMessage(message, "*");
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const m = event.data;
    if (!m || m.jsonrpc !== "2.0") return;
    if (m.method === undefined && m.id !== undefined) {
      const waiter = pending.get(m.id);
      if (!waiter) return;
      pending.delete(m.id);
      if (m.error) waiter.reject(new Error(m.error.message || "request failed"));
      else waiter.resolve(m.result);
      return;
    }
    const handler = handlers[m.method];
    Promise.resolve(handler ? handler(m.params || {}) : undefined).then((result) => {
      if (m.id !== undefined) post({ jsonrpc: "2.0", id: m.id, result: result || {} });
    }, (error) => {
      if (m.id !== undefined) post({ jsonrpc: "2.0", id: m.id, error: { code: -32603, message: String(error) } });
    });
  });
  return {
    on(method, handler) { handlers[method] = handler; },
    request(method, params) {
      const id = nextId++;
      post({ jsonrpc: "2.0", id, method, params });
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
    notify(method, params) { post({ jsonrpc: "2.0", method, params }); },
  };
})();
