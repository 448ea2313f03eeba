//! The MCP layer's own flags: how answers are shaped for the connected client.

use clap::{Args, ValueEnum};
use rmcp::model::Tool;

/// Whether a result that carries inline images also carries `structuredContent`.
///
/// Claude Code forwards only `JSON.stringify(structuredContent)` to the model whenever it is
/// present and drops every content block, images included (anthropics/claude-code#54737,
/// #55677; #79944, July 2026, still open for text blocks). Claude Desktop, claude.ai and the MCP
/// Inspector show both. Claude Code (2.1.92 on, tuannvm/codex-mcp-server#161) and the official
/// SDK clients also refuse a result without `structuredContent` from a tool that declares an
/// `outputSchema` (-32600). So a client that gets image results without `structuredContent` is
/// never told of an output schema for those tools ([`Self::declared`]): it gets the images, and
/// nothing it was promised is missing.
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

    /// `tools` as this client is told of them: without the output schemas of the tools whose
    /// results carry inline images (`carries_images`: those that answer through `shaped`, which
    /// leaves `structuredContent` out where [`Self::keep_with_images`] says so) where their
    /// results go without `structuredContent` (never a schema an answer will not meet).
    pub(crate) fn declared(
        self,
        mut tools: Vec<Tool>,
        client_name: Option<&str>,
        carries_images: impl Fn(&str) -> bool,
    ) -> Vec<Tool> {
        if !self.keep_with_images(client_name) {
            for tool in tools.iter_mut().filter(|t| carries_images(&t.name)) {
                tool.output_schema = None;
            }
        }
        tools
    }

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
    /// Whether results with inline images also carry structuredContent (see docs/results-and-app-view.md).
    #[arg(long, env = "RUNCOMFY_STRUCTURED_CONTENT", value_enum, default_value_t = StructuredMode::Auto)]
    pub structured_content: StructuredMode,

    /// Ask the person to confirm, through their MCP client (elicitation), before starting jobs
    /// whose estimate may exceed this many US dollars (or whose price is not known); nothing is
    /// submitted unless they accept. A client that cannot ask is refused such a call, with how to
    /// ask for less. Unset: no confirmation. With --oauth each person may choose a lower amount on
    /// the consent page (this one is the most they can choose), or one of their own when unset.
    #[arg(long, env = "RUNCOMFY_CONFIRM_ABOVE_USD", value_name = "USD",
          value_parser = crate::jobs::limits::positive_usd)]
    pub confirm_above_usd: Option<f64>,
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

    /// Where image results go without structuredContent, those tools declare no output schema
    /// (the official SDK clients and Claude Code refuse such a result otherwise, -32600).
    #[test]
    fn no_output_schema_is_declared_where_results_leave_structured_content_out() {
        let tool = |name: &str| {
            let schema = std::sync::Arc::new(serde_json::Map::new());
            Tool::new(name.to_owned(), "d", schema.clone()).with_raw_output_schema(schema)
        };
        let tools = || vec![tool("a"), tool("b"), tool("c"), tool("d")];
        let schemas = |mode: StructuredMode, client| -> Vec<bool> {
            mode.declared(tools(), client, |name| name != "d")
                .iter()
                .map(|t| t.output_schema.is_some())
                .collect()
        };
        assert_eq!(
            schemas(StructuredMode::Auto, Some("claude-code")),
            [false, false, false, true]
        );
        assert_eq!(schemas(StructuredMode::Auto, Some("other")), [true; 4]);
        assert_eq!(
            schemas(StructuredMode::OmitWithImages, None),
            [false, false, false, true]
        );
        assert_eq!(schemas(StructuredMode::Always, Some("claude-code")), [true; 4]);
    }
}
