//! Any catalogue model's input, as opposed to the typed Dreamina input in [`crate::dreamina`]:
//! [`safe_schema`] turns the schema RunComfy publishes into one every MCP client and model
//! provider accepts, and maps a model's input back to RunComfy's own keys; [`validate`] checks an
//! input against the model's own schema before it is sent.

pub mod media_inputs;
pub mod safe_schema;
pub(crate) mod shape;
pub mod validate;
