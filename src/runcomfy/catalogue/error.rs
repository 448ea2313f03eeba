//! What a catalogue call answers when it cannot: each error says what to do next.

use super::MAX_ID_CHARS;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogueError {
    /// Neither RunComfy nor a copy on this machine can say.
    #[error("RunComfy's model catalogue could not be read ({0}), and there is no copy of it on this machine yet. Try again once RunComfy answers.")]
    Unavailable(String),
    /// RunComfy's catalogue is larger than this server reads.
    #[error("RunComfy's model catalogue is larger than this server reads: {0}. list_models, describe_model and run_model need it; generate_image and edit_image do not.")]
    TooLarge(String),
    #[error("there is no model {model:?} in RunComfy's catalogue{}", suggest(.closest))]
    Unknown { model: String, closest: Vec<String> },
    /// An id no model can have: refused before any work.
    #[error("a model id is at most {MAX_ID_CHARS} characters, and this one has {0}: list_models gives the ids")]
    IdTooLong(usize),
}

fn suggest(closest: &[String]) -> String {
    if closest.is_empty() {
        ". list_models lists the models".to_owned()
    } else {
        format!(
            ". The closest ids: {}. list_models searches them all",
            closest.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_model_names_the_closest_ids_or_where_to_look() {
        let unknown = |closest: &[&str]| {
            CatalogueError::Unknown {
                model: "a/x".into(),
                closest: closest.iter().map(|c| (*c).to_owned()).collect(),
            }
            .to_string()
        };
        assert_eq!(
            unknown(&["a/y", "a/z"]),
            "there is no model \"a/x\" in RunComfy's catalogue. The closest ids: a/y, a/z. list_models searches them all"
        );
        assert_eq!(
            unknown(&[]),
            "there is no model \"a/x\" in RunComfy's catalogue. list_models lists the models"
        );
    }
}
