//! glance-cache-manage: the image cache of a glance-api, through its cache management API
//! (flavor `cachemanagement`), with Glance's commands, options, output and exit codes.
//!
//!     glance-cache-manage [options] <command> [ID]

use clap::Parser;
use glance_common::keystone::{self, Ref};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "glance-cache-manage", disable_help_subcommand = true)]
struct Args {
    #[arg(short, long)]
    verbose: bool,
    #[arg(short, long)]
    debug: bool,
    /// Address of the glance-api to talk to.
    #[arg(short = 'H', long, default_value = "0.0.0.0")]
    host: String,
    #[arg(short, long, default_value_t = 9292)]
    port: u16,
    /// Accept any TLS certificate (https is used when the port speaks it).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
    #[arg(short = 'A', long = "os-auth-token", env = "OS_AUTH_TOKEN")]
    auth_token: Option<String>,
    #[arg(short = 'I', long = "os-username", env = "OS_USERNAME")]
    username: Option<String>,
    #[arg(short = 'K', long = "os-password", env = "OS_PASSWORD")]
    password: Option<String>,
    #[arg(short = 'R', long = "os-region-name", env = "OS_REGION_NAME")]
    region: Option<String>,
    #[arg(long = "os-tenant-id", env = "OS_TENANT_ID")]
    tenant_id: Option<String>,
    #[arg(short = 'T', long = "os-tenant-name", env = "OS_TENANT_NAME")]
    tenant_name: Option<String>,
    #[arg(short = 'N', long = "os-auth-url", env = "OS_AUTH_URL")]
    auth_url: Option<String>,
    /// keystone or noauth (keystone whenever an auth URL is given).
    #[arg(short = 'S', long = "os_auth_strategy", env = "OS_AUTH_STRATEGY", default_value = "noauth")]
    auth_strategy: String,
    command: Option<String>,
    ids: Vec<String>,
}

const COMMANDS: &[(&str, &str)] = &[
    ("help", "Output help for one of the commands below"),
    ("list-cached", "List all images currently cached"),
    ("list-queued", "List all images currently queued for caching"),
    ("queue-image", "Queue an image for caching"),
    ("delete-cached-image", "Purges an image from the cache"),
    ("delete-all-cached-images", "Removes all images from the cache"),
    ("delete-queued-image", "Deletes an image from the cache queue"),
    ("delete-all-queued-images", "Deletes all images from the cache queue"),
];

fn usage() -> String {
    let mut text = String::from("Usage: glance-cache-manage <options> <command> [args]\n\nCommands:\n\n");
    for (name, help) in COMMANDS {
        text.push_str(&format!("    {name:<24} {help}\n"));
    }
    text
}

struct Client {
    base: String,
    host: String,
    http: reqwest::blocking::Client,
    token: Option<String>,
}

/// What went wrong, as Glance's tool words it.
enum Failure {
    Usage(String),
    Message(String),
}

impl Client {
    fn call(&self, method: reqwest::Method, path: &str, action: &str) -> Result<serde_json::Value, Failure> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("x-auth-token", token);
        }
        let response = request.send().map_err(|e| Failure::Message(format!("Failed to {action}. Got error:\n{e}")))?;
        match response.status().as_u16() {
            200..=299 => Ok(response.json().unwrap_or(serde_json::Value::Null)),
            404 => Err(Failure::Message(format!("Cache management middleware not enabled on host {}", self.host))),
            401 | 403 => Err(Failure::Message("Not authorized to make this request.".into())),
            status => {
                let body = response.text().unwrap_or_default();
                Err(Failure::Message(format!("Failed to {action}. Got error:\n{status}\n{}", body.trim())))
            }
        }
    }
}

/// ISO-8601 UTC to the second, as Glance's 19-character column shows it; 0 means never.
fn timestamp(epoch: f64) -> String {
    if epoch <= 0.0 {
        return "N/A".into();
    }
    chrono::DateTime::from_timestamp(epoch as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_else(|| "N/A".into())
}

fn confirm(force: bool, question: &str) -> bool {
    if force {
        return true;
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

fn one_id<'a>(ids: &'a [String], what: &str) -> Result<&'a str, Failure> {
    match ids {
        [id] => Ok(id),
        _ => Err(Failure::Usage(format!(
            "Please specify one and only ID of the image you wish to \n{what} from the cache as the first argument"
        ))),
    }
}

fn run(args: &Args, client: &Client, command: &str) -> Result<(), Failure> {
    let say = |text: String| {
        if args.verbose {
            println!("{text}");
        }
    };
    match command {
        "list-cached" => {
            let body = client.call(reqwest::Method::GET, "/v1/cached_images", "list cached images")?;
            let images = body["cached_images"].as_array().cloned().unwrap_or_default();
            if images.is_empty() {
                println!("No cached images.");
                return Ok(());
            }
            println!("Found {} cached images...", images.len());
            println!(
                "{:<36} {:<19} {:<19} {:>14} {:>10}",
                "ID", "Last Accessed (UTC)", "Last Modified (UTC)", "Size", "Hits"
            );
            println!("{} {} {} {} {}", "-".repeat(36), "-".repeat(19), "-".repeat(19), "-".repeat(14), "-".repeat(10));
            for image in images {
                println!(
                    "{:<36} {:<19} {:<19} {:>14} {:>10}",
                    image["image_id"].as_str().unwrap_or(""),
                    timestamp(image["last_accessed"].as_f64().unwrap_or(0.0)),
                    timestamp(image["last_modified"].as_f64().unwrap_or(0.0)),
                    image["size"].as_i64().unwrap_or(0),
                    image["hits"].as_i64().unwrap_or(0)
                );
            }
        }
        "list-queued" => {
            let body = client.call(reqwest::Method::GET, "/v1/queued_images", "list queued images")?;
            let ids = body["queued_images"].as_array().cloned().unwrap_or_default();
            if ids.is_empty() {
                println!("No queued images.");
                return Ok(());
            }
            println!("Found {} queued images...", ids.len());
            println!("{:<36}", "ID");
            println!("{}", "-".repeat(36));
            for id in ids {
                println!("{:<36}", id.as_str().unwrap_or(""));
            }
        }
        "queue-image" => {
            let id = one_id(&args.ids, "queue")?;
            if confirm(args.force, &format!("Queue image {id} for caching?")) {
                client.call(reqwest::Method::PUT, &format!("/v1/queued_images/{id}"), "queue image")?;
                say(format!("Queued image {id} for caching"));
            }
        }
        "delete-cached-image" => {
            let id = one_id(&args.ids, "delete")?;
            if confirm(args.force, &format!("Delete cached image {id}?")) {
                client.call(reqwest::Method::DELETE, &format!("/v1/cached_images/{id}"), "delete cached image")?;
                say(format!("Deleted cached image {id}"));
            }
        }
        "delete-all-cached-images" => {
            if confirm(args.force, "Delete all cached images?") {
                let body = client.call(reqwest::Method::DELETE, "/v1/cached_images", "delete all cached images")?;
                say(format!("Deleted {} cached images", body["num_deleted"].as_i64().unwrap_or(0)));
            }
        }
        "delete-queued-image" => {
            let id = one_id(&args.ids, "delete")?;
            if confirm(args.force, &format!("Delete queued image {id}?")) {
                client.call(reqwest::Method::DELETE, &format!("/v1/queued_images/{id}"), "delete queued image")?;
                say(format!("Deleted queued image {id}"));
            }
        }
        "delete-all-queued-images" => {
            if confirm(args.force, "Delete all queued images?") {
                let body = client.call(reqwest::Method::DELETE, "/v1/queued_images", "delete all queued images")?;
                say(format!("Deleted {} queued images", body["num_deleted"].as_i64().unwrap_or(0)));
            }
        }
        other => return Err(Failure::Usage(format!("{}\nUnknown command: {other}", usage()))),
    }
    Ok(())
}

/// A Keystone v3 token for the given user and project, when the strategy asks for one.
fn keystone_token(args: &Args, http: &reqwest::blocking::Client) -> Result<Option<String>, String> {
    if let Some(token) = &args.auth_token {
        return Ok(Some(token.clone()));
    }
    let strategy = if args.auth_url.is_some() { "keystone" } else { args.auth_strategy.as_str() };
    if strategy != "keystone" {
        return Ok(None);
    }
    let url = args.auth_url.as_deref().ok_or("--os-auth-url is required with the keystone strategy")?;
    let (Some(user), Some(password)) = (&args.username, &args.password) else {
        return Err("--os-username and --os-password are required with the keystone strategy".into());
    };
    let project = match (&args.tenant_id, &args.tenant_name) {
        (Some(id), _) => Ref::Id(id),
        (None, Some(name)) => Ref::Name(name),
        (None, None) => return Err("--os-tenant-name or --os-tenant-id is required".into()),
    };
    let default = Ref::Id("default");
    let body = keystone::password_login(user, password, default, project, default);
    let base = keystone::base_url(url);
    let response =
        http.post(format!("{base}/v3/auth/tokens?nocatalog")).json(&body).send().map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("Keystone refused the credentials ({})", response.status()));
    }
    response
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(|t| Some(t.to_string()))
        .ok_or_else(|| "Keystone answered without a token".into())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(command) = args.command.clone() else {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    };
    if command == "help" {
        match args.ids.first().and_then(|c| COMMANDS.iter().find(|(name, _)| name == c)) {
            Some((name, help)) => println!("{name}: {help}"),
            None => print!("{}", usage()),
        }
        return ExitCode::SUCCESS;
    }
    let http = match reqwest::blocking::Client::builder().danger_accept_invalid_certs(args.insecure).build() {
        Ok(http) => http,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let token = match keystone_token(&args, &http) {
        Ok(token) => token,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // 0.0.0.0 means this host, as for the servers.
    let host = if args.host == "0.0.0.0" { "127.0.0.1".to_string() } else { args.host.clone() };
    let client = Client { base: format!("http://{host}:{}", args.port), host: args.host.clone(), http, token };
    let started = Instant::now();
    match run(&args, &client, &command) {
        Ok(()) => {
            if args.verbose {
                println!("Completed in {:.4} sec.", started.elapsed().as_secs_f64());
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(text) | Failure::Message(text)) => {
            println!("{text}");
            ExitCode::FAILURE
        }
    }
}
