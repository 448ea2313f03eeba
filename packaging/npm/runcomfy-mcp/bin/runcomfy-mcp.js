#!/usr/bin/env node
// The npm launcher: runs the binary from the package for this platform, which npm installed as
// one of the optionalDependencies (it skips those whose os/cpu/libc do not match), so nothing
// is downloaded after install. Arguments, stdio, exit status and signals pass straight through:
// an MCP client talks to the binary itself.
"use strict";

const { spawn } = require("child_process");

const pkg = `runcomfy-mcp-${process.platform}-${process.arch}`;
const exe = process.platform === "win32" ? "runcomfy-mcp.exe" : "runcomfy-mcp";

let binary;
try {
  binary = require.resolve(`${pkg}/bin/${exe}`);
} catch {
  process.stderr.write(
    `runcomfy-mcp: no binary for ${process.platform}-${process.arch}: the package ${pkg} is not installed.\n` +
      "Builds exist for linux-x64 and linux-arm64 (glibc), darwin-arm64, darwin-x64 and win32-x64. If yours is\n" +
      "one, reinstall without --no-optional / --omit=optional; otherwise `cargo install runcomfy-mcp` builds it.\n",
  );
  process.exit(1);
}

const child = spawn(binary, process.argv.slice(2), { stdio: "inherit", windowsHide: true });
// The client stops a stdio server with a signal to this process: pass it on, then exit as the
// binary does.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (err) => {
  process.stderr.write(`runcomfy-mcp: could not start ${binary}: ${err.message}\n`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});
