//! The eval task catalog from `[evals.*]`: which tasks exist, which configs they allow, and the argv of a job.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::redact::Redactor;
use crate::config::{ConfigError, EvalTask, Settings};

pub struct TaskCatalog {
    tasks: BTreeMap<String, EvalTask>,
    self_exe: PathBuf,
    pub repo_root: PathBuf,
    /// The configured secrets, taken out of whatever an eval prints.
    pub redactor: Redactor,
}

/// What `{…}` placeholders stand for in one job's command.
pub struct Placeholders<'a> {
    pub job_id: &'a str,
    pub task_id: &'a str,
    pub config_id: &'a str,
}

impl TaskCatalog {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let self_exe = if settings.evals.self_exe.is_empty() {
            std::env::current_exe().map_err(|e| {
                ConfigError::new(
                    "evals.self_exe",
                    format!("cannot find this executable: {e}"),
                )
            })?
        } else {
            PathBuf::from(&settings.evals.self_exe)
        };
        let bearer = settings.slo.prometheus.bearer.expose_secret().trim();
        let bearer_token = bearer
            .strip_prefix("Bearer ")
            .or_else(|| bearer.strip_prefix("bearer "))
            .unwrap_or(bearer);
        let secrets = settings
            .auth
            .api_keys
            .iter()
            .map(ExposeSecret::expose_secret);
        Ok(Self {
            tasks: settings.evals.tasks.clone(),
            self_exe,
            repo_root: settings.repo_root(),
            redactor: Redactor::new(secrets.chain([bearer_token])),
        })
    }

    /// Every task id, sorted.
    pub fn task_ids(&self) -> impl Iterator<Item = &String> {
        self.tasks.keys()
    }

    pub fn get(&self, task_id: &str) -> Option<&EvalTask> {
        self.tasks.get(task_id)
    }

    /// `demo (Demo evaluation…), probe (…)`, for messages that must tell a caller what exists.
    pub fn describe(&self) -> String {
        let list: Vec<String> = self
            .tasks
            .iter()
            .map(|(id, t)| {
                if t.description.is_empty() {
                    id.clone()
                } else {
                    format!("{id} ({})", t.description)
                }
            })
            .collect();
        list.join(", ")
    }

    pub fn max_timeout(task: &EvalTask) -> Duration {
        task.timeout_seconds
    }

    /// The argv: placeholders are replaced only where they are a whole argument, never inside one and never
    /// through a shell, so a configId can never become code.
    pub fn argv(&self, task: &EvalTask, values: &Placeholders<'_>) -> Vec<OsString> {
        task.command
            .iter()
            .map(|arg| match arg.as_str() {
                "{self}" => self.self_exe.clone().into_os_string(),
                "{jobId}" => values.job_id.into(),
                "{taskId}" => values.task_id.into(),
                "{configId}" => values.config_id.into(),
                other => other.into(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_substituted_as_whole_arguments_only() {
        let mut settings = Settings::defaults().expect("defaults");
        settings.evals.self_exe = "/bin/cockpit".into();
        let catalog = TaskCatalog::from_settings(&settings).expect("catalog");
        let task = EvalTask {
            command: vec![
                "{self}".into(),
                "--cfg={configId}".into(),
                "{configId}".into(),
                "{jobId}".into(),
            ],
            configs: None,
            timeout_seconds: Duration::from_secs(1),
            env: BTreeMap::default(),
            requeue_on_restart: false,
            description: String::new(),
        };
        let argv = catalog.argv(
            &task,
            &Placeholders {
                job_id: "job_1",
                task_id: "t",
                config_id: "a;b",
            },
        );
        assert_eq!(
            argv,
            vec!["/bin/cockpit", "--cfg={configId}", "a;b", "job_1"]
        );
    }
}
