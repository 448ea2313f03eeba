//! The MCP Apps extension (`io.modelcontextprotocol/ui`, spec 2026-01-26): a view the host
//! renders inline next to the image tools' results, and the app-only tools behind its buttons.
//!
//! Progressive: everything here applies only to a client that declares the extension with the
//! `text/html;profile=mcp-app` mime type. Any other client sees exactly the tools and results it
//! saw before: no `_meta.ui` on any tool, no app-only tool listed or callable.
//!
//! The view is one self-contained HTML document compiled into the binary (`app/`: no
//! CDN, no remote script). It needs no network at all: result images reach it as MCP resources
//! (`runcomfy://jobs/{id}/previews/{n}`) read through the host, so its CSP allows nothing
//! beyond the default (`'self'` and `data:`).

use rmcp::model::{ClientCapabilities, JsonObject, MetaObject, Tool};

use super::tools::{Audience, Tools};
use serde_json::{json, Value};

/// The extension's id, in both sides' `capabilities.extensions`.
pub const EXTENSION_ID: &str = "io.modelcontextprotocol/ui";
/// The mime type of an MCP App view, which a client must list to get one.
pub const MIME_TYPE: &str = "text/html;profile=mcp-app";
/// The one view: a job's result (live while it runs) and, for list_jobs, the gallery.
pub const VIEWER_URI: &str = "ui://runcomfy/viewer.html";
/// The view, one document put together from its parts (`app/`): no script, style or image from
/// anywhere else. It talks to the host only through postMessage JSON-RPC (`bridge.js`), and gets
/// images as MCP resources (data: URLs).
pub const VIEWER_HTML: &str = concat!(
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    "<title>Dreamina images</title>\n<style>\n",
    include_str!("app/viewer.css"),
    "</style>\n</head>\n<body>\n<main id=\"app\"><p class=\"muted\">Waiting for the result…</p></main>\n",
    "<script>\n\"use strict\";\n",
    include_str!("app/bridge.js"),
    include_str!("app/view.js"),
    include_str!("app/upload.js"),
    "</script>\n</body>\n</html>\n"
);
/// `_meta["ui/resourceUri"]`: the link's deprecated spelling.
const LEGACY_URI_KEY: &str = "ui/resourceUri";

/// Whether the client can render MCP Apps views.
pub fn client_renders(capabilities: Option<&ClientCapabilities>) -> bool {
    capabilities
        .and_then(|c| c.extensions.as_ref())
        .and_then(|e| e.get(EXTENSION_ID))
        .and_then(|settings| settings.get("mimeTypes"))
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t.as_str() == Some(MIME_TYPE)))
}

/// The tool list for a client that renders views: the tools whose results the view shows link
/// it, the view-only ones say so (each tool's [`Audience`] says which it is). For any other
/// client, the list without the view-only tools and nothing added.
pub(super) fn tools_for(tools: &Tools, renders: bool) -> Vec<Tool> {
    tools
        .router
        .list_all()
        .into_iter()
        .filter_map(|mut tool| {
            let visibility = match tools.audience(&tool.name) {
                Some(Audience::ViewOnly) if !renders => return None,
                _ if !renders => None,
                Some(Audience::ViewOnly) => Some(json!(["app"])),
                Some(Audience::ModelAndView) => Some(json!(["model", "app"])),
                Some(Audience::Model) | None => None,
            };
            if let Some(visibility) = visibility {
                let meta = tool.meta.get_or_insert_with(MetaObject::default);
                meta.0.insert(
                    "ui".to_owned(),
                    json!({ "resourceUri": VIEWER_URI, "visibility": visibility }),
                );
                // The flat key older hosts read, set alongside as the official SDK's
                // registerAppTool does.
                meta.0.insert(LEGACY_URI_KEY.to_owned(), json!(VIEWER_URI));
            }
            Some(tool)
        })
        .collect()
}

/// The view resource's `_meta.ui`: no connect, resource or frame domains beyond the default
/// (the images come as resources), a border around it.
pub fn viewer_meta() -> MetaObject {
    let mut meta = JsonObject::new();
    meta.insert(
        "ui".to_owned(),
        json!({ "csp": { "connectDomains": [], "resourceDomains": [] }, "prefersBorder": true }),
    );
    MetaObject(meta)
}

/// What the server declares in `capabilities.extensions`.
pub fn server_settings() -> JsonObject {
    JsonObject::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(value: Value) -> ClientCapabilities {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_a_client_listing_the_app_mime_type_renders() {
        let with = caps(json!({"extensions": {EXTENSION_ID: {"mimeTypes": [MIME_TYPE]}}}));
        let other_type = caps(json!({"extensions": {EXTENSION_ID: {"mimeTypes": ["text/html"]}}}));
        let bare = caps(json!({"extensions": {EXTENSION_ID: {}}}));
        assert!(client_renders(Some(&with)));
        assert!(!client_renders(Some(&other_type)));
        assert!(!client_renders(Some(&bare)));
        assert!(!client_renders(Some(&caps(json!({})))));
        assert!(!client_renders(None));
    }

    #[test]
    fn the_viewer_is_self_contained() {
        for remote in ["src=\"http", "src='http", "href=\"http", "@import", "<link"] {
            assert!(
                !VIEWER_HTML.contains(remote),
                "the viewer must load nothing remote: {remote}"
            );
        }
    }
}
