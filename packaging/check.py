"""Checks the packaging metadata against itself and the registry's schema, offline.

- server.json validates against the MCP Registry's published schema (vendored), and a copy with a
  required field removed does not (so a validator that accepts anything would fail here);
- every version in the packaging files is Cargo.toml's;
- the MCP Bundle manifest lists the tools the server has (tests/snapshots, the reviewed tools/list);
- the Claude Code and Cursor plugin (packaging/plugin): its manifests name the same plugin and
  version, Cursor's manifest keeps to the keys and name pattern of Cursor's published manifest
  schema (Cursor has no validating tool; Claude Code's `claude plugin validate` runs in
  scripts/test-dist), each skill's frontmatter has the `name` of its folder and a description,
  and both server entries start `serve`.

Run by scripts/dist (before building anything) and scripts/test-dist, with the tests' .venv python."""

import json
import pathlib
import re
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

    problems += plugin_problems(version)

    for problem in problems:
        print(f"packaging: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"packaging: metadata of {version} consistent; server.json valid against {schema['$id']}")


# The keys of Cursor's plugin manifest (https://cursor.com/schemas/cursor-plugin/plugin.json, which
# allows no others) and its pattern for plugin and skill names.
CURSOR_KEYS = {
    "name", "displayName", "description", "version", "author", "publisher", "homepage", "repository",
    "license", "logo", "keywords", "category", "tags", "commands", "agents", "skills", "rules", "hooks",
    "variables", "mcpServers",
}
NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


def plugin_problems(version):
    problems = []
    plugin = ROOT / "packaging/plugin"
    claude = load("packaging/plugin/.claude-plugin/plugin.json")
    cursor = load("packaging/plugin/.cursor-plugin/plugin.json")
    market = load("packaging/plugin/.claude-plugin/marketplace.json")
    for what, manifest in [("Claude Code's", claude), ("Cursor's", cursor)]:
        if manifest.get("version") != version:
            problems.append(f"the plugin's {what} manifest is version {manifest.get('version')}, Cargo.toml's is {version}")
        if not NAME.match(manifest.get("name", "")):
            problems.append(f"the plugin's {what} manifest has no kebab-case name")
    if claude["name"] != cursor["name"] or [p["name"] for p in market["plugins"]] != [claude["name"]]:
        problems.append("the plugin's manifests and its marketplace entry name different plugins")
    for key in sorted(set(cursor) - CURSOR_KEYS):
        problems.append(f"packaging/plugin/.cursor-plugin/plugin.json: `{key}` is not a key of Cursor's manifest")
    author = cursor.get("author", {})
    if not author.get("name") or set(author) - {"name", "email"}:
        problems.append("packaging/plugin/.cursor-plugin/plugin.json: `author` takes a name and an email only")
    for entry in ["skills", "mcpServers"]:
        target = cursor.get(entry)
        if not isinstance(target, str) or not (plugin / target).exists():
            problems.append(f"packaging/plugin/.cursor-plugin/plugin.json: `{entry}` names no file or folder of the plugin")
    skills = sorted((plugin / "skills").glob("*/SKILL.md"))
    if not skills:
        problems.append("packaging/plugin has no skills/*/SKILL.md")
    for skill in skills:
        text = skill.read_text()
        head = text.split("---", 2)[1] if text.startswith("---\n") else ""
        fields = dict(line.split(":", 1) for line in head.strip().splitlines() if ":" in line and not line.startswith(" "))
        name = fields.get("name", "").strip()
        if name != skill.parent.name or not NAME.match(name):
            problems.append(f"{skill.relative_to(ROOT)}: frontmatter `name` must be its folder's name, {skill.parent.name}")
        if len(fields.get("description", "").strip()) < 40:
            problems.append(f"{skill.relative_to(ROOT)}: frontmatter needs a `description` saying when to use it")
    for entries in ["packaging/plugin/.mcp.json", "packaging/plugin/mcp.json"]:
        servers = load(entries)["mcpServers"]
        if [s.get("args") for s in servers.values()] != [["serve"]]:
            problems.append(f"{entries}: one server entry, started with `serve`")
    return problems


if __name__ == "__main__":
    main()
