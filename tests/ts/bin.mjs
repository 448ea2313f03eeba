// Where the tests find the built server: $RUNCOMFY_MCP_BIN, else cargo's target directory
// ($CARGO_TARGET_DIR when set, relative to the working directory as cargo reads it; else the
// repository's target/) for the given profile. One place, for every script here.
import { fileURLToPath } from "node:url";
import path from "node:path";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** cargo's target directory. */
export function targetDir() {
  const set = process.env.CARGO_TARGET_DIR;
  return set ? path.resolve(set) : path.join(root, "target");
}

/** The runcomfy-mcp binary of `profile` ("debug" or "release"). */
export function binary(profile = "debug") {
  return process.env.RUNCOMFY_MCP_BIN ?? path.join(targetDir(), profile, "runcomfy-mcp");
}
