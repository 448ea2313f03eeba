"""Checks the packaging metadata against itself and the registry's schema, offline.

- server.json validates against the MCP Registry's published schema (vendored), and a copy with a
  required field removed does not (so a validator that accepts anything would fail here);
- every version in the packaging files is Cargo.toml's;
- the MCP Bundle manifest lists the tools the server has (tests/snapshots, the reviewed tools/list).

Run by scripts/dist (before building anything) and scripts/test-dist, with the tests' .venv python."""

import json
import pathlib
import sys
import tomllib

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(path):
    return json.loads((ROOT / path).read_text())


def main():
    problems = []
    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]

    schema = load("packaging/mcp-registry/server.schema.json")
    server = load("server.json")
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    for error in validator.iter_errors(server):
        problems.append(f"server.json: {error.json_path}: {error.message}")
    broken = {k: v for k, v in server.items() if k != "name"}
    if validator.is_valid(broken):
        problems.append("the registry schema accepted a server.json without `name`: the validator is not checking")
    if server["$schema"] != schema["$id"]:
        problems.append(f"server.json names the schema {server['$schema']}, the vendored one is {schema['$id']}")

    launcher = load("packaging/npm/runcomfy-mcp/package.json")
    manifest = load("packaging/mcpb/manifest.json")
    versions = {
        "server.json version": server["version"],
        "packaging/npm/runcomfy-mcp/package.json version": launcher["version"],
        "packaging/mcpb/manifest.json version": manifest["version"],
    }
    for pkg in server["packages"]:
        versions[f"server.json {pkg['registryType']} package"] = pkg.get("version") or pkg["identifier"].rsplit(":", 1)[1]
    for name, pinned in launcher["optionalDependencies"].items():
        versions[f"the launcher's optional dependency {name}"] = pinned
    for what, found in versions.items():
        if found != version:
            problems.append(f"{what} is {found}, Cargo.toml's version is {version}")
    if launcher.get("mcpName") != server["name"]:
        problems.append(f"the npm launcher's mcpName is {launcher.get('mcpName')}, server.json's name is {server['name']}")
    if f"mcp-name: {server['name']}" not in (ROOT / "README.md").read_text():
        problems.append(f"README.md (the PyPI description) lacks `mcp-name: {server['name']}`, which the registry checks")

    snapshot = (ROOT / "tests/snapshots/tools_schema__tools_list.snap").read_text().split("---", 2)[2]
    tools = {tool["name"] for tool in json.loads(snapshot)}
    listed = {tool["name"] for tool in manifest["tools"]}
    if tools != listed:
        problems.append(
            f"packaging/mcpb/manifest.json lists the tools {sorted(listed)}, the server has {sorted(tools)}: "
            "update its `tools`"
        )

    for problem in problems:
        print(f"packaging: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"packaging: metadata of {version} consistent; server.json valid against {schema['$id']}")


if __name__ == "__main__":
    main()
