//! `hibana audit`: the local auditor, or the network's auditors through the gateway
//! (`--remote`), optionally with explanations written by the network's chat model (`--explain`).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use hibana_audit::{
    Explanation, FileReport, Finding, Severity, analyse_bytes,
    files::{AuditOptions, EXIT_INPUT_ERROR},
    report::Format,
};
use hibana_types::InferenceReceipt;
use serde_json::{Value, json};

use crate::home::data_dir;

/// Arguments of `hibana audit`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 analysed, no finding reached --fail-on; 1 a finding reached \
--fail-on; 2 an input could not be (fully) analysed (unreadable, binary, empty, syntax error)."
)]
pub(crate) struct AuditCommand {
    /// Solidity files or directories to analyse (directories are searched recursively for `.sol`).
    #[arg(required_unless_present = "evaluate")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Exit with code 1 when a finding of this severity or higher is reported.
    #[arg(long, value_enum)]
    fail_on: Option<SeverityArg>,
    /// Score the detectors against a labelled corpus (a manifest.json or its folder) and print
    /// precision and recall per category.
    #[arg(long, value_name = "DIR_OR_MANIFEST", conflicts_with = "paths")]
    evaluate: Option<PathBuf>,
    /// Send each file to the network's auditors through the gateway (an `audit` subnet's
    /// miners, or any provider), paid by the API key, instead of analysing it here.
    #[arg(long, conflicts_with = "evaluate")]
    remote: bool,
    /// Ask the network's chat model, through the gateway, to explain each finding and suggest
    /// a fix; explanations are labelled as generated and never change the findings.
    #[arg(long, conflicts_with = "evaluate")]
    explain: bool,
    /// What audits with --remote: a subnet name, `audit`, `hibana-audit` or an engine hash.
    #[arg(long, default_value = "audit")]
    audit_model: String,
    /// What explains with --explain: a subnet name, `chat`, or a model name or hash.
    #[arg(long, default_value = "chat")]
    explain_model: String,
    /// Longest explanation, in tokens.
    #[arg(long, default_value_t = 160)]
    explain_tokens: u32,
    /// Gateway URL (default: the one a devnet of --home wrote).
    #[arg(long, env = "HIBANA_GATEWAY_URL")]
    gateway: Option<String>,
    /// API key for the gateway (default: the devnet's demo key of --home).
    #[arg(long, env = "HIBANA_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Devnet home to read the gateway URL and demo key from.
    #[arg(long)]
    home: Option<PathBuf>,
}

/// Output formats of `hibana audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// Human-readable diagnostics with code snippets.
    Text,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0 for code-scanning tools.
    Sarif,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Sarif => Format::Sarif,
        }
    }
}

/// How bad a finding is, as `--fail-on` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SeverityArg {
    /// Worth knowing; not a vulnerability by itself.
    Info,
    /// Unlikely or limited impact.
    Low,
    /// Exploitable under conditions.
    Medium,
    /// Funds or control can be taken.
    High,
}

impl From<SeverityArg> for Severity {
    fn from(severity: SeverityArg) -> Self {
        match severity {
            SeverityArg::Info => Severity::Info,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
        }
    }
}

impl AuditCommand {
    /// Whether the command asks the network (`--remote` or `--explain`), and so needs the async
    /// runtime.
    pub(crate) fn uses_network(&self) -> bool {
        self.remote || self.explain
    }

    /// The library's options for the files and the report.
    fn options(&self) -> AuditOptions {
        AuditOptions {
            paths: self.paths.clone(),
            format: self.format.into(),
            fail_on: self.fail_on.map(Severity::from),
            evaluate: self.evaluate.clone(),
        }
    }
}

/// Runs `hibana audit` here, without the network.
pub(crate) fn run_local(cmd: &AuditCommand) -> ExitCode {
    let code = hibana_audit::files::run_to(&cmd.options(), &mut std::io::stdout().lock())
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            EXIT_INPUT_ERROR
        });
    exit_code(code)
}

/// The exit code of `hibana audit --remote/--explain`, whose failures are input errors.
pub(crate) fn network_exit_code(result: Result<i32>) -> ExitCode {
    exit_code(result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        EXIT_INPUT_ERROR
    }))
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The gateway and key to use: flags, then the files a devnet of `--home` wrote.
fn gateway_and_key(cmd: &AuditCommand) -> Result<(String, String)> {
    let home = cmd
        .home
        .clone()
        .unwrap_or_else(|| data_dir().join("devnet"));
    let read = |name: &str| -> Option<String> {
        std::fs::read_to_string(home.join("gateway").join(name))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let gateway = cmd.gateway.clone().or_else(|| read("url")).ok_or_else(|| {
        anyhow!(
            "no gateway: pass --gateway URL, or start `hibana devnet` (it writes {})",
            home.join("gateway/url").display()
        )
    })?;
    let key = cmd
        .api_key
        .clone()
        .or_else(|| read("demo-api-key"))
        .ok_or_else(|| anyhow!("no API key: pass --api-key (or set HIBANA_API_KEY)"))?;
    Ok((gateway.trim_end_matches('/').to_string(), key))
}

/// Runs `hibana audit --remote` and/or `--explain` through the gateway; returns the exit code.
pub(crate) async fn run_network(cmd: &AuditCommand) -> Result<i32> {
    let (gateway, key) = gateway_and_key(cmd)?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(300))
        .build()?;
    let files = hibana_audit::files::collect_files(&cmd.paths)?;
    if files.is_empty() {
        bail!("no .sol files found in the given paths");
    }
    let mut reports = if cmd.remote {
        let mut out = Vec::with_capacity(files.len());
        for f in &files {
            out.push(remote_report(&http, &gateway, &key, &cmd.audit_model, f).await?);
        }
        out
    } else {
        hibana_audit::files::analyse_files(&files)
    };
    if cmd.explain {
        explain_all(&http, &gateway, &key, cmd, &mut reports).await;
    }
    let options = cmd.options();
    print!("{}", hibana_audit::report::render(&reports, options.format));
    Ok(hibana_audit::files::exit_code(&reports, options.fail_on))
}

/// Audits one file on the network. Input the auditor would refuse (binary, empty, too large,
/// not UTF-8) is reported here and never sent.
async fn remote_report(
    http: &reqwest::Client,
    gateway: &str,
    key: &str,
    model: &str,
    file: &Path,
) -> Result<FileReport> {
    let shown = file.display().to_string();
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => bail!("cannot read {shown}: {e}"),
    };
    let local_check = analyse_bytes(&shown, &bytes);
    let Some(text) = local_check.text.clone().filter(|t| !t.trim().is_empty()) else {
        return Ok(local_check);
    };
    let resp = http
        .post(format!("{gateway}/v1/audit"))
        .bearer_auth(key)
        .json(&json!({"model": model, "path": shown, "source": text}))
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {gateway}"))?;
    let status = resp.status();
    let receipt = resp
        .headers()
        .get(hibana_roles::provider::RECEIPT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = resp
        .json()
        .await
        .with_context(|| format!("the gateway's answer for {shown} is not JSON"))?;
    if !status.is_success() {
        let message = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        bail!("the network could not audit {shown}: HTTP {status}: {message}");
    }
    if let Some(r) = receipt.and_then(|r| InferenceReceipt::from_hex(&r).ok()) {
        eprintln!(
            "{shown}: audited by provider {} (engine {}), {} tokens, price {}",
            r.body.provider, r.body.model_hash, r.body.prompt_tokens, r.body.price
        );
    }
    hibana_audit::report::from_json(&shown, &text, &body)
        .map_err(|e| anyhow!("the auditor's answer for {shown} is malformed: {e}"))
}

/// The prompt that asks for one finding's explanation.
fn explain_prompt(report: &FileReport, f: &Finding) -> String {
    let text = report.text.as_deref().unwrap_or_default();
    let (line, _) = report.position(f.span.start);
    let snippet: Vec<String> = text
        .lines()
        .enumerate()
        .skip(line.saturating_sub(4))
        .take(7)
        .map(|(k, l)| format!("{:>4} | {l}", k + 1))
        .collect();
    format!(
        "A Solidity auditor reported this finding.\nFinding: {} ({}).\nDetail: {}\nLine {line}:\n{}\n\nExplain in two sentences why this is dangerous, then give one concrete fix.",
        f.rule.title,
        f.rule.category.as_str(),
        f.message,
        snippet.join("\n")
    )
}

/// Asks the chat model for an explanation of every finding; a failed request leaves that
/// finding without one and says so on stderr.
async fn explain_all(
    http: &reqwest::Client,
    gateway: &str,
    key: &str,
    cmd: &AuditCommand,
    reports: &mut [FileReport],
) {
    for r in reports.iter_mut() {
        let prompts: Vec<String> = r.findings.iter().map(|f| explain_prompt(r, f)).collect();
        for (f, prompt) in r.findings.iter_mut().zip(prompts) {
            let body = json!({
                "model": cmd.explain_model,
                "messages": [
                    {"role": "system", "content": "You are a smart-contract security reviewer. Answer briefly and concretely."},
                    {"role": "user", "content": prompt},
                ],
                "max_tokens": cmd.explain_tokens,
                "temperature": 0,
            });
            match ask_chat(http, gateway, key, &body).await {
                Ok((model, text)) => f.explanation = Some(Explanation { model, text }),
                Err(e) => eprintln!(
                    "warning: no explanation for {} at byte {}: {e:#}",
                    f.rule.id, f.span.start
                ),
            }
        }
    }
}

async fn ask_chat(
    http: &reqwest::Client,
    gateway: &str,
    key: &str,
    body: &Value,
) -> Result<(String, String)> {
    let resp = http
        .post(format!("{gateway}/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {gateway}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.context("the answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "HTTP {status}: {}",
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no reason given")
        );
    }
    let text = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow!("the model returned no text"))?;
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("unknown model");
    Ok((model.to_string(), text.to_string()))
}
