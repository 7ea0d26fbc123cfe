//! `mcp-cockpit demo-eval`: the built-in eval behind the `demo` and `probe` tasks. It speaks the eval
//! protocol (progress lines, then a result) so the kit's flows work with nothing installed.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct DemoEvalArgs {
    /// Progress lines to print.
    #[arg(long, default_value_t = 5)]
    pub steps: u32,
    /// Pause before each step, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub step_ms: u64,
    /// The configId the job was started with (echoed in the result).
    #[arg(long, default_value = "default")]
    pub config_id: String,
}

pub fn run(args: &DemoEvalArgs) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let steps = args.steps.max(1);
    writeln!(
        out,
        "demo-eval: {steps} steps with config {}",
        args.config_id
    )?;
    for step in 1..=steps {
        std::thread::sleep(Duration::from_millis(args.step_ms));
        let progress = f64::from(step) / f64::from(steps);
        writeln!(
            out,
            "{}",
            json!({"progress": progress, "message": format!("step {step}/{steps}")})
        )?;
        out.flush()?;
    }
    // Deterministic "scores", so examples and tests can show a stable result.
    let result = json!({"result": {"configId": args.config_id, "samples": steps * 100, "accuracy": 0.9, "passed": true}});
    writeln!(out, "{result}")?;
    out.flush()
}
