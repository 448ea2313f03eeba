//! Docs that cannot drift. The README's tool list is made from the `tools/list` snapshots (which
//! `tests/tools_schema.rs` holds to the live server) and `docs/configuration.md` from the CLI's own
//! `--help`; each test fails when the file differs from what the code gives now, and says the one
//! command that rewrites it: `UPDATE_DOCS=1 cargo test --test docs`.
//!
//! Also here, since it reads the same snapshots: every tool, app-only ones included, carries what
//! the Claude and ChatGPT directories require (a title, and a read-only or destructive hint).

use std::{collections::BTreeSet, path::PathBuf, process::Command};

use serde_json::Value;

const REGENERATE: &str = "UPDATE_DOCS=1 cargo test --test docs";
const SNAPSHOTS: [&str; 2] = [
    "tests/snapshots/tools_schema__tools_list.snap",
    "tests/snapshots/tools_schema__tools_list_app.snap",
];
const TOOLS_BEGIN: &str =
    "<!-- tools: generated from tests/snapshots by `UPDATE_DOCS=1 cargo test --test docs`; do not edit -->\n";
const TOOLS_END: &str = "<!-- end of tools -->\n";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `path` must read `want`; with UPDATE_DOCS set it is written instead.
fn check(path: &str, want: &str) {
    let file = root().join(path);
    let have = std::fs::read_to_string(&file).unwrap_or_default();
    if have == want {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&file, want).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        return;
    }
    let line = have
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
    panic!(
        "{path} is stale: it differs from what the code gives now, from line {} on \
         (it has {:?}, the code gives {:?}). Regenerate it with `{REGENERATE}` and commit it.",
        line + 1,
        have.lines().nth(line).unwrap_or("(end of file)"),
        want.lines().nth(line).unwrap_or("(end of file)"),
    );
}

/// Every tool of both snapshots, each once, in the app hosts' order (their list holds every tool).
fn tools() -> Vec<Value> {
    let mut seen = BTreeSet::new();
    let mut tools = Vec::new();
    for path in SNAPSHOTS.iter().rev() {
        let text = std::fs::read_to_string(root().join(path)).expect(path);
        // insta's header (`---` … `---`), then the JSON.
        let json = text.splitn(3, "---\n").nth(2).expect("an insta snapshot");
        let list: Value = serde_json::from_str(json).expect("the snapshot's JSON");
        for tool in list.as_array().expect("a list of tools") {
            if seen.insert(tool["name"].as_str().expect("a name").to_owned()) {
                tools.push(tool.clone());
            }
        }
    }
    tools
}

fn title(tool: &Value) -> Option<&str> {
    tool["title"]
        .as_str()
        .or(tool["annotations"]["title"].as_str())
        .filter(|t| !t.trim().is_empty())
}

fn app_only(tool: &Value) -> bool {
    tool["_meta"]["ui"]["visibility"] == serde_json::json!(["app"])
}

/// A description's first clause: up to the first `.`, `:` or `;` outside parentheses, cut at a
/// comma when still long, so that a table row stays one line's worth.
fn gist(description: &str) -> String {
    let mut depth = 0i32;
    let mut end = description.len();
    for (i, c) in description.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '.' | ':' | ';' if depth == 0 && description[i + 1..].starts_with([' ', '\n']) => {
                end = i;
                break;
            }
            _ => {}
        }
        if i + 1 == description.len() {
            end = description.trim_end_matches('.').len();
        }
    }
    let mut gist = description[..end].trim().to_owned();
    if gist.chars().count() > 160 {
        let cut = gist.char_indices().nth(160).map_or(gist.len(), |(i, _)| i);
        if let Some(comma) = gist[..cut].rfind(',') {
            gist.truncate(comma);
            gist.push_str(" …");
        }
    }
    gist
}

/// Text for a table cell: `|` escaped, and outside code spans `<` and `>` too (Markdown would
/// take `<this>` for an HTML tag and show nothing).
fn cell(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.replace('\n', " ").split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let part = part.replace('|', "\\|");
        if i % 2 == 0 {
            out.push_str(&part.replace('<', "&lt;").replace('>', "&gt;"));
        } else {
            out.push_str(&part);
        }
    }
    out
}

fn tools_section() -> String {
    let mut out = String::from(TOOLS_BEGIN);
    out.push_str("| tool | title | what it does | kind |\n|---|---|---|---|\n");
    for tool in tools() {
        let hints = &tool["annotations"];
        let mut kind = if hints["readOnlyHint"] == true {
            "read-only"
        } else if hints["destructiveHint"] == true {
            "destructive"
        } else {
            "changes state"
        }
        .to_owned();
        if app_only(&tool) {
            kind.push_str(", app-only");
        }
        let mut gist = gist(tool["description"].as_str().unwrap_or(""));
        if !gist.ends_with('…') {
            gist.push('.');
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            tool["name"].as_str().unwrap(),
            cell(title(&tool).unwrap_or("untitled")),
            cell(&gist),
            kind,
        ));
    }
    out.push_str(TOOLS_END);
    out
}

#[test]
fn readme_tools_section_is_generated_from_the_tools_list() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (Some(begin), Some(end)) = (readme.find(TOOLS_BEGIN), readme.find(TOOLS_END)) else {
        panic!("README.md lacks its generated tools section (from {TOOLS_BEGIN:?} to {TOOLS_END:?}): put the two markers back where the tools go, then run `{REGENERATE}`");
    };
    let want = format!(
        "{}{}{}",
        &readme[..begin],
        tools_section(),
        &readme[end + TOOLS_END.len()..]
    );
    check("README.md", &want);
}

/// The Claude connector directory wants every tool titled and marked read-only or destructive;
/// ChatGPT's apps read the same annotations. A tool added without them fails here.
#[test]
fn every_tool_has_a_title_and_a_read_only_or_destructive_hint() {
    let tools = tools();
    assert!(tools.len() >= 11, "both snapshots read: {} tools", tools.len());
    let mut missing = Vec::new();
    for tool in &tools {
        let name = tool["name"].as_str().unwrap_or("?");
        let hints = &tool["annotations"];
        if title(tool).is_none() {
            missing.push(format!("{name}: no title"));
        }
        // Both stated, as RunComfy's own server holds its tools to (a missing hint is read by
        // clients as its default, which for destructiveHint is true).
        for hint in ["readOnlyHint", "destructiveHint"] {
            if !hints[hint].is_boolean() {
                missing.push(format!("{name}: no {hint}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "tools the directories would refuse: {missing:?} (set them in the tool's #[tool(...)] annotations)"
    );
}

/// One option, argument or environment variable of a command's help.
struct Entry {
    flag: String,
    env: String,
    default: String,
    help: String,
}

/// clap's help, read back: sections (`Options:`, a heading of the flags' own, `Environment
/// only:`), each a list of entries whose first line starts two or six spaces in, and whose help
/// follows on that line (after two spaces) or on lines further in.
fn parse_help(help: &str) -> (String, Vec<(String, Vec<Entry>)>) {
    let about = help.lines().next().unwrap_or("").to_owned();
    let mut sections: Vec<(String, Vec<Entry>)> = Vec::new();
    let mut raw: Vec<String> = Vec::new();
    let flush = |raw: &mut Vec<String>, sections: &mut Vec<(String, Vec<Entry>)>| {
        if let (Some(entry), Some(section)) = (entry(raw), sections.last_mut()) {
            section.1.push(entry);
        }
        raw.clear();
    };
    for line in help.lines().skip(1) {
        let indent = line.len() - line.trim_start().len();
        if indent == 0 && line.ends_with(':') {
            flush(&mut raw, &mut sections);
            sections.push((line.trim_end_matches(':').to_owned(), Vec::new()));
        } else if indent == 0 && !line.is_empty() {
            flush(&mut raw, &mut sections); // the usage line
        } else if (indent == 2 || indent == 6) && !sections.is_empty() {
            flush(&mut raw, &mut sections);
            raw.push(line.trim().to_owned());
        } else if !raw.is_empty() {
            raw.push(line.trim().to_owned());
        }
    }
    flush(&mut raw, &mut sections);
    sections.retain(|(name, entries)| name != "Commands" && !entries.is_empty());
    (about, sections)
}

fn entry(raw: &[String]) -> Option<Entry> {
    let first = raw.first()?;
    let (flag, rest) = first.split_once("  ").unwrap_or((first, ""));
    let flag = flag.trim().to_owned();
    if flag.ends_with("--help") || flag.ends_with("--version") {
        return None;
    }
    let mut text = rest.trim().to_owned();
    let mut values = Vec::new();
    for line in &raw[1..] {
        if let Some(value) = line.strip_prefix("- ") {
            // `Possible values:` lists, as `value: what it means`
            let (name, what) = value.split_once(':').unwrap_or((value, ""));
            values.push(format!("`{}`: {}", name.trim(), what.trim()));
        } else if line != "Possible values:" {
            text.push(' ');
            text.push_str(line);
        }
    }
    let mut env = String::new();
    let mut default = String::new();
    // clap's bracketed notes, each to its own column.
    while let Some(start) = text.rfind(" [") {
        let Some(len) = text[start..].find(']') else { break };
        let note = text[start + 2..start + len].to_owned();
        if let Some(name) = note.strip_prefix("env: ") {
            env = format!("`{}`", name.split('=').next().unwrap_or(name));
        } else if let Some(value) = note.strip_prefix("default: ") {
            default = format!("`{value}`");
        } else if let Some(list) = note.strip_prefix("possible values: ") {
            values.push(format!("one of `{}`", list.replace(", ", "`, `")));
        } else {
            break;
        }
        text.replace_range(start..start + len + 1, "");
    }
    let mut help = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !values.is_empty() {
        help.push_str(&format!(". {}", values.join("; ")));
    }
    let (flag, env) = if flag.starts_with(|c: char| c.is_ascii_uppercase()) {
        (String::new(), format!("`{flag}`")) // an environment-only setting
    } else {
        (format!("`{flag}`"), env)
    };
    Some(Entry {
        flag,
        env,
        default,
        help: cell(&help),
    })
}

fn help_of(args: &[&str]) -> String {
    // A clean environment: clap prints a set variable's value beside its name.
    let out = Command::new(env!("CARGO_BIN_EXE_runcomfy-mcp"))
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run runcomfy-mcp --help");
    assert!(out.status.success(), "runcomfy-mcp {args:?} --help failed");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

fn configuration() -> String {
    let top = help_of(&[]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    let mut out = format!(
        "# Configuration\n\n\
         <!-- Generated from `runcomfy-mcp --help` and each command's `--help` by `{REGENERATE}`; do not edit. -->\n\n\
         {}\n\n\
         Every setting is a flag, an environment variable, or both; a flag wins over its variable, and a \
         blank variable counts as unset. In an MCP client's configuration the variables go in the \
         server entry's `env` block.\n\n\
         Commands: {}.\n",
        top.lines().next().unwrap_or(""),
        commands
            .iter()
            .map(|c| format!("[`{c}`](#runcomfy-mcp-{c})"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    // A flag that several commands share is described once, where it first appears.
    let mut described = BTreeSet::new();
    for command in &commands {
        let (about, sections) = parse_help(&help_of(&[command]));
        out.push_str(&format!("\n## `runcomfy-mcp {command}`\n\n{about}\n"));
        for (name, entries) in sections {
            let (new, shared): (Vec<_>, Vec<_>) = entries
                .into_iter()
                .partition(|e| described.insert(format!("{}{}", e.flag, e.env)));
            if !new.is_empty() {
                out.push_str(&format!("\n### {name}\n\n"));
                if new.iter().all(|e| e.flag.is_empty()) {
                    out.push_str("| environment | what it does |\n|---|---|\n");
                    for e in &new {
                        out.push_str(&format!("| {} | {} |\n", e.env, e.help));
                    }
                } else {
                    out.push_str("| flag | environment | default | what it does |\n|---|---|---|---|\n");
                    for e in &new {
                        out.push_str(&format!("| {} | {} | {} | {} |\n", e.flag, e.env, e.default, e.help));
                    }
                }
            }
            if !shared.is_empty() {
                // Named without their value placeholders: `--base-url`, not `--base-url <BASE_URL>`.
                let names: Vec<&str> = shared
                    .iter()
                    .map(|e| if e.flag.is_empty() { &e.env } else { &e.flag })
                    .map(|n| n.split_whitespace().next().unwrap_or(n).trim_end_matches('`'))
                    .collect();
                out.push_str(&format!(
                    "\n{}, as above: {}.\n",
                    if new.is_empty() { name.as_str() } else { "Also" },
                    names.iter().map(|n| format!("{}`", n)).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    out
}

#[test]
fn configuration_reference_is_generated_from_the_cli_help() {
    check("docs/configuration.md", &configuration());
}
