//! The upstream's flags (and their environment variables): where RunComfy is, which model, the
//! token (from the environment only), checked once at start so that a bad setting is a clear
//! start-up error rather than a confusing failure on the first tool call.

use std::time::Duration;

use clap::Args;

use super::{ApiToken, ClientConfig, RetryPolicy};

pub const DEFAULT_BASE_URL: &str = "https://model-api.runcomfy.net";
pub const DEFAULT_MODEL: &str = crate::dreamina::TEXT_TO_IMAGE_MODEL;
/// Environment variables the token is read from, in order. The token is never a flag: command
/// lines are visible to every user of the machine.
pub const TOKEN_VARS: [&str; 2] = ["RUNCOMFY_API_KEY", "RUNCOMFY_API_TOKEN"];

/// Where the upstream is and how to talk to it.
#[derive(Args, Debug, Clone)]
pub struct UpstreamArgs {
    /// RunComfy model API base URL.
    #[arg(long, env = "RUNCOMFY_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,

    /// Model id on RunComfy for text-to-image (requests without reference images).
    #[arg(long, env = "RUNCOMFY_MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,

    /// Model id on RunComfy for edits (requests with reference images).
    #[arg(long, env = "RUNCOMFY_EDIT_MODEL", default_value = crate::dreamina::EDIT_MODEL)]
    pub edit_model: String,

    /// Timeout for each HTTP call to RunComfy, in seconds.
    #[arg(long, env = "RUNCOMFY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,

    /// Run against the built-in simulator on 127.0.0.1 instead of RunComfy: no token, no network.
    #[arg(long, env = "RUNCOMFY_SIMULATE")]
    pub simulate: bool,

    /// With no RunComfy key set, run on the built-in simulator instead of refusing to start (the
    /// Claude Desktop bundle sets it: it can be tried before a key is entered). A key, once set,
    /// is used.
    #[arg(long, env = "RUNCOMFY_SIMULATE_WITHOUT_KEY")]
    pub simulate_without_key: bool,

    #[command(flatten)]
    pub balance: BalanceArgs,
}

/// Where the account balance is read (another host than the model API's: one wallet pays for
/// every RunComfy product).
#[derive(Args, Debug, Clone, Default)]
pub struct BalanceArgs {
    /// Base URL of RunComfy's account API, read for the balance (GET <this>/prod/v2/balance) shown beside spending and estimates. Default: https://api.runcomfy.net, or the --base-url itself when that is not RunComfy's (a test server, a proxy); with --simulate, the simulator. "off": no balance read.
    #[arg(long, env = "RUNCOMFY_BALANCE_BASE_URL", value_name = "URL")]
    pub balance_base_url: Option<String>,
}

impl BalanceArgs {
    /// The balance's base URL, or `None` when it is turned off. `model_base_url`: the model API's
    /// base in use (the simulator's with `--simulate`); one that is not RunComfy's own carries the
    /// balance too unless this setting says otherwise, so that a test server or a proxy is never
    /// bypassed for the real host.
    pub fn base_url(&self, model_base_url: Option<&str>) -> Result<Option<String>, ConfigError> {
        let url = match (self.balance_base_url.as_deref().map(str::trim), model_base_url) {
            (Some("off"), _) => return Ok(None),
            (Some(url), _) if !url.is_empty() => url.to_owned(),
            (_, Some(model)) if model.trim_end_matches('/') != DEFAULT_BASE_URL => model.to_owned(),
            _ => super::balance::DEFAULT_BALANCE_BASE_URL.to_owned(),
        };
        check_base_url(&url).map_err(|_| ConfigError::BadBalanceUrl(url.clone()))?;
        Ok(Some(url))
    }
}

impl UpstreamArgs {
    /// Settles `--simulate-without-key`: with no key in the environment, this run simulates,
    /// and the log says so (a person must not mistake the simulator's pictures for paid ones).
    pub fn settle_simulation(&mut self) {
        if self.simulate_without_key && !self.simulate && token_from_env().is_none() {
            tracing::warn!("no RunComfy key set: running on the built-in simulator (no charge, no network); set RUNCOMFY_API_KEY to make real images");
            self.simulate = true;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no RunComfy API token: set RUNCOMFY_API_KEY (or RUNCOMFY_API_TOKEN) to your key from the RunComfy dashboard, or pass --simulate to run offline on the built-in simulator")]
    MissingToken,
    #[error("--base-url {0:?} is not an http(s) URL such as https://model-api.runcomfy.net")]
    BadBaseUrl(String),
    #[error("--model {0:?} is not a model id such as bytedance/dreamina-4-0/text-to-image")]
    BadModel(String),
    #[error("--edit-model {0:?} is not a model id such as bytedance/dreamina-4-0/edit")]
    BadEditModel(String),
    #[error("--balance-base-url {0:?} is not an http(s) URL such as https://api.runcomfy.net (or \"off\")")]
    BadBalanceUrl(String),
}

impl UpstreamArgs {
    /// The client settings for a real upstream (`--simulate` is handled by the caller, which
    /// starts the simulator and passes its URL). `per_user_keys`: every call carries its caller's
    /// key, so the server has none of its own; one in the environment is left unused (never a
    /// fallback for a caller without a key), with a warning.
    pub fn client_config(
        &self,
        token_from_env: Option<ApiToken>,
        base_url_override: Option<String>,
        per_user_keys: bool,
    ) -> Result<ClientConfig, ConfigError> {
        let base_url = base_url_override.unwrap_or_else(|| self.base_url.clone());
        check_base_url(&base_url)?;
        check_model(&self.model)?;
        check_model(&self.edit_model).map_err(|_| ConfigError::BadEditModel(self.edit_model.clone()))?;
        let token = if per_user_keys {
            if token_from_env.is_some() {
                tracing::warn!(
                    "RUNCOMFY_API_KEY is set but unused: with --per-user-keys or --oauth every RunComfy call uses the key of the person who made the request"
                );
            }
            None
        } else {
            Some(token_from_env.ok_or(ConfigError::MissingToken)?)
        };
        Ok(ClientConfig {
            base_url,
            token,
            model: self.model.clone(),
            timeout: Duration::from_secs(self.timeout_secs),
            retry: RetryPolicy::default(),
        })
    }
}

impl UpstreamArgs {
    /// The model ids of Dreamina 4.0's two endpoints, as configured.
    pub fn models(&self) -> crate::dreamina::Models {
        crate::dreamina::Models {
            text_to_image: self.model.clone(),
            edit: self.edit_model.clone(),
        }
    }
}

pub fn token_from_env() -> Option<ApiToken> {
    TOKEN_VARS
        .iter()
        .find_map(|var| std::env::var(var).ok().and_then(ApiToken::new))
}

fn check_base_url(raw: &str) -> Result<(), ConfigError> {
    let url = reqwest::Url::parse(raw).map_err(|_| ConfigError::BadBaseUrl(raw.to_owned()))?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none();
    ok.then_some(()).ok_or_else(|| ConfigError::BadBaseUrl(raw.to_owned()))
}

/// The model id goes into the submit URL's path: segments of safe characters only.
fn check_model(raw: &str) -> Result<(), ConfigError> {
    let ok = !raw.is_empty()
        && raw.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    ok.then_some(()).ok_or_else(|| ConfigError::BadModel(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_models_are_checked() {
        assert!(check_base_url("https://model-api.runcomfy.net").is_ok());
        assert!(check_base_url("http://127.0.0.1:8787/").is_ok());
        for bad in ["model-api.runcomfy.net", "ftp://x", "https://x/?a=1", ""] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
        assert!(check_model(DEFAULT_MODEL).is_ok());
        for bad in ["", "a//b", "../x", "a/b?c", "a b"] {
            assert!(check_model(bad).is_err(), "{bad}");
        }
    }

    /// The balance goes to RunComfy's account host only when the model API is RunComfy's own: a
    /// test server or proxy given as --base-url is never bypassed for the real host.
    #[test]
    fn the_balance_follows_a_base_url_that_is_not_runcomfys() {
        let args = |url: Option<&str>| BalanceArgs {
            balance_base_url: url.map(str::to_owned),
        };
        let real = Some("https://api.runcomfy.net".to_owned());
        assert_eq!(args(None).base_url(Some(DEFAULT_BASE_URL)).unwrap(), real);
        assert_eq!(args(None).base_url(None).unwrap(), real);
        assert_eq!(
            args(None).base_url(Some("http://127.0.0.1:9")).unwrap().as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            args(Some("http://127.0.0.1:7"))
                .base_url(Some("http://127.0.0.1:9"))
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:7")
        );
        assert_eq!(args(Some("off")).base_url(Some(DEFAULT_BASE_URL)).unwrap(), None);
        assert!(args(Some("api.runcomfy.net")).base_url(None).is_err());
    }
}
