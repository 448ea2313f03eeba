//! A [`JobResult`] as MCP content: text first (every fact, for clients and models that read only
//! text), then the inline images, then a link per output.

use rmcp::model::CallToolResult;

use super::{
    super::{
        answer::success,
        media::{facts, image_block, label, numbers, resource_link},
    },
    JobResult,
};
use crate::{
    jobs::{price::usd, Recipe},
    media::{InlineForm, InlineImage},
    runcomfy::RequestId,
};

impl JobResult {
    /// Text first (every fact, for clients and models that read only text), then the inline
    /// images, then a link per output. `structuredContent` goes along unless `keep_structured`
    /// says this client would then drop the images.
    pub(in crate::mcp) fn render(&self, inline: &[InlineImage], keep_structured: bool) -> CallToolResult {
        let mut result = success(self, self.text());
        if !keep_structured && !inline.is_empty() {
            tracing::debug!("leaving structuredContent out so that the client shows the images");
            result.structured_content = None;
        }
        result.content.extend(inline.iter().map(image_block));
        let numbers = numbers(&self.outputs);
        result.content.extend(
            self.outputs
                .iter()
                .zip(numbers)
                .filter_map(|(o, n)| resource_link(o, n)),
        );
        result
    }

    fn text(&self) -> String {
        let mut text = if self.jobs.is_empty() {
            format!("Job {}: {}.", self.request_id, self.status)
        } else {
            let mut counts: Vec<(&str, usize)> = Vec::new();
            for job in &self.jobs {
                match counts.iter_mut().find(|(s, _)| *s == job.status.as_str()) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((job.status.as_str(), 1)),
                }
            }
            let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            let mut text = format!("{} jobs: {}.", self.jobs.len(), counts.join(", "));
            // The batch's whole range on its first line, before any job's detail.
            if let Some(estimate) = &self.estimated_cost_usd {
                text.push_str(&format!(" Estimated {} in all.", estimate.range_text()));
            }
            for (i, job) in self.jobs.iter().enumerate() {
                let id = job
                    .request_id
                    .as_ref()
                    .map_or("(no request_id)".to_owned(), RequestId::to_string);
                text.push_str(&format!("\nJob {} {id}: {}", i + 1, job.status));
                if let Some(p) = job.queue_position {
                    text.push_str(&format!(", queue position {p}"));
                }
                if let Some(cost) = job.cost_usd {
                    text.push_str(&format!(", cost {}", usd(cost)));
                }
                if let Some(error) = &job.error {
                    text.push_str(&format!("\n  {}", error.replace('\n', " ")));
                }
            }
            text
        };
        if !self.outputs.is_empty() {
            let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            let mut kinds = Vec::new();
            if !self.images.is_empty() || (self.videos.is_empty() && self.audios.is_empty() && self.files.is_empty()) {
                kinds.push(count(self.images.len(), "image"));
            }
            if !self.videos.is_empty() {
                kinds.push(count(self.videos.len(), "video"));
            }
            if !self.audios.is_empty() {
                kinds.push(count(self.audios.len(), "audio file"));
            }
            if !self.files.is_empty() {
                kinds.push(count(self.files.len(), "other file"));
            }
            if self.unlisted_outputs > 0 {
                kinds.push(format!(
                    "and {} more not listed",
                    crate::text::thousands(self.unlisted_outputs as usize)
                ));
            }
            // A batch's list of jobs ends in a line of its own: the count is the answer's, not the
            // last job's.
            let gap = if self.jobs.is_empty() { " " } else { "\nIn all: " };
            text.push_str(&format!("{gap}{}.", kinds.join(", ")));
        }
        for (output, number) in self.outputs.iter().zip(numbers(&self.outputs)) {
            text.push_str(&format!("\n{}: {}", label(output, number), output.url));
            let facts = facts(output);
            if !facts.is_empty() {
                text.push_str(&format!("\n  {facts}"));
            }
            if let Some(reference) = &output.reference {
                text.push_str(&format!("\n  reference {reference}"));
            }
            if let Some(path) = &output.saved_path {
                text.push_str(&format!("\n  saved to {path}"));
            }
            if let Some(inline) = &output.inline {
                let form = match inline.form {
                    InlineForm::Preview => "preview",
                    InlineForm::FullSize => "full-size image",
                };
                text.push_str(&format!("\n  {form} attached ({}×{})", inline.width, inline.height));
            }
            if let Some(problem) = &output.problem {
                text.push_str(&format!("\n  note: {problem}"));
            }
            if let Some(why) = &output.not_a_link {
                text.push_str(&format!("\n  not linked: {why}"));
            }
        }
        for note in &self.notes {
            text.push_str(&format!("\nNote: {note}"));
        }
        if let Some(cost) = self.cost_usd {
            text.push_str(&format!("\nCost: {} (as RunComfy reported it).", usd(cost)));
        }
        if let Some(estimate) = &self.estimated_cost_usd {
            text.push_str(&format!("\n{}.", estimate.text()));
        }
        if let Some(recipe) = &self.made_with {
            text.push_str(&format!(
                "\nMade with: {} (call again with these to vary it)",
                recipe_line(recipe)
            ));
        }
        text.push_str(&format!("\n{}", self.next_step));
        text
    }
}

/// `prompt "…", size 2048x2048(1:1), scale 0.5, force_single false, images ["a#1"]`.
fn recipe_line(recipe: &Recipe) -> String {
    let mut line = format!(
        "prompt {:?}, size {}, scale {}, force_single {}",
        recipe.prompt,
        recipe.size.as_deref().unwrap_or("(the model's default)"),
        recipe.scale,
        recipe.force_single
    );
    if !recipe.images.is_empty() {
        let images: Vec<String> = recipe.images.iter().map(|i| format!("{i:?}")).collect();
        line.push_str(&format!(", images [{}]", images.join(", ")));
    }
    line
}
