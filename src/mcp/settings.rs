//! The MCP layer's own flags: how answers are shaped for the connected client.

use clap::{Args, ValueEnum};

/// Whether a result that carries inline images also carries `structuredContent`.
///
/// Claude Code forwards only `JSON.stringify(structuredContent)` to the model whenever it is
/// present and drops every content block, images included (anthropics/claude-code#54737,
/// #55677, #79944). Claude Desktop, claude.ai and the MCP Inspector show both. The MCP spec says
/// a tool with an output schema should send `structuredContent`, so leaving it out is a
/// workaround for one client, applied where it helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum StructuredMode {
    /// Leave `structuredContent` out of image-carrying results for clients known to drop image
    /// blocks next to it (`clientInfo.name` = `claude-code`); keep it for every other client.
    #[default]
    Auto,
    /// Always send `structuredContent` (spec-strict; Claude Code then shows no image).
    Always,
    /// Never send `structuredContent` on a result that carries inline images.
    OmitWithImages,
}

impl StructuredMode {
    /// Client names (from `initialize`) whose hosts drop image blocks next to `structuredContent`.
    const DROPS_IMAGES: [&'static str; 1] = ["claude-code"];

    /// Whether a result with inline images should carry `structuredContent` for this client.
    pub fn keep_with_images(self, client_name: Option<&str>) -> bool {
        match self {
            Self::Always => true,
            Self::OmitWithImages => false,
            Self::Auto => !client_name.is_some_and(|name| Self::DROPS_IMAGES.contains(&name)),
        }
    }
}

/// Flags of `serve` for the MCP answers; flattened into the serve command.
#[derive(Args, Debug, Clone)]
pub struct McpArgs {
    /// Whether results with inline images also carry structuredContent (see the README).
    #[arg(long, env = "RUNCOMFY_STRUCTURED_CONTENT", value_enum, default_value_t = StructuredMode::Auto)]
    pub structured_content: StructuredMode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_omits_structured_content_only_for_claude_code() {
        assert!(!StructuredMode::Auto.keep_with_images(Some("claude-code")));
        assert!(StructuredMode::Auto.keep_with_images(Some("claude-ai")));
        assert!(StructuredMode::Auto.keep_with_images(None));
        assert!(StructuredMode::Always.keep_with_images(Some("claude-code")));
        assert!(!StructuredMode::OmitWithImages.keep_with_images(Some("mcp")));
    }
}
