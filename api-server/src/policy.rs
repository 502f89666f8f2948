//! Glance's policy rules (oslo.policy's language): `""`/`@` allow, `!` deny, `role:<r>`,
//! `rule:<name>`, `is_admin:True`, `<field>:%(<target field>)s` and literal `<field>:<value>`,
//! combined with `and`, `or`, `not` and parentheses (or the old list-of-lists form).
//!
//! The policy file is re-read when its mtime changes; new rules are merged over the loaded ones
//! (oslo's `overwrite=False`), and a file that does not parse keeps the old rules in force.

use glance_common::Error;
use glance_common::context::RequestContext;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Allow,
    Deny,
    Role(String),
    Rule(String),
    IsAdmin(bool),
    /// `<credential field>:%(<target field>)s`
    TargetMatch {
        credential: String,
        target: String,
    },
    /// `<field>:<literal>` against the credentials.
    Literal {
        field: String,
        value: String,
    },
    /// `'<literal>':%(<target field>)s`: a constant compared with the target.
    LiteralMatch {
        literal: String,
        target: String,
    },
    Not(Box<Rule>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

/// Parses one rule string.
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Ok(Rule::Allow);
    }
    let mut pos = 0;
    let rule = parse_or(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err(format!("unexpected '{}' in rule '{text}'", tokens[pos]));
    }
    Ok(rule)
}

/// Words and parentheses. A check never starts with `(` or ends with `)` (`%(owner)s` ends
/// in `s`), so only those are peeled off as tokens.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for word in text.split_whitespace() {
        let inner = word.trim_start_matches('(');
        tokens.extend(std::iter::repeat_n("(".to_string(), word.len() - inner.len()));
        let check = inner.trim_end_matches(')');
        if !check.is_empty() {
            tokens.push(check.to_string());
        }
        tokens.extend(std::iter::repeat_n(")".to_string(), inner.len() - check.len()));
    }
    tokens
}

fn parse_or(t: &[String], pos: &mut usize) -> Result<Rule, String> {
    let mut terms = vec![parse_and(t, pos)?];
    while t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("or")) {
        *pos += 1;
        terms.push(parse_and(t, pos)?);
    }
    Ok(if terms.len() == 1 { terms.remove(0) } else { Rule::Or(terms) })
}

fn parse_and(t: &[String], pos: &mut usize) -> Result<Rule, String> {
    let mut terms = vec![parse_not(t, pos)?];
    while t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("and")) {
        *pos += 1;
        terms.push(parse_not(t, pos)?);
    }
    Ok(if terms.len() == 1 { terms.remove(0) } else { Rule::And(terms) })
}

fn parse_not(t: &[String], pos: &mut usize) -> Result<Rule, String> {
    if t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("not")) {
        *pos += 1;
        return Ok(Rule::Not(Box::new(parse_not(t, pos)?)));
    }
    parse_atom(t, pos)
}

fn parse_atom(t: &[String], pos: &mut usize) -> Result<Rule, String> {
    let token = t.get(*pos).ok_or("rule ends too early")?;
    *pos += 1;
    if token == "(" {
        let inner = parse_or(t, pos)?;
        if t.get(*pos).map(String::as_str) != Some(")") {
            return Err("missing ')'".into());
        }
        *pos += 1;
        return Ok(inner);
    }
    check(token)
}

fn check(token: &str) -> Result<Rule, String> {
    match token {
        "@" => return Ok(Rule::Allow),
        "!" => return Ok(Rule::Deny),
        _ => {}
    }
    let (kind, value) = token.split_once(':').ok_or_else(|| format!("'{token}' is not a check"))?;
    let quoted = kind
        .strip_prefix('\'')
        .and_then(|k| k.strip_suffix('\''))
        .or_else(|| kind.strip_prefix('"').and_then(|k| k.strip_suffix('"')));
    if let Some(literal) = quoted {
        let target = value
            .strip_prefix("%(")
            .and_then(|v| v.strip_suffix(")s"))
            .ok_or_else(|| format!("'{token}': a quoted constant must be compared with a %(field)s of the target"))?;
        return Ok(Rule::LiteralMatch { literal: literal.to_string(), target: target.to_string() });
    }
    Ok(match kind {
        "role" => Rule::Role(value.to_lowercase()),
        "rule" => Rule::Rule(value.to_string()),
        "is_admin" => Rule::IsAdmin(value.eq_ignore_ascii_case("true")),
        _ => match value.strip_prefix("%(").and_then(|v| v.strip_suffix(")s")) {
            Some(target) => Rule::TargetMatch { credential: kind.to_string(), target: target.to_string() },
            None => Rule::Literal { field: kind.to_string(), value: value.to_string() },
        },
    })
}

/// A rule set: name → rule.
pub type Rules = HashMap<String, Rule>;

/// How a policy file is written: YAML when its name ends in `.yaml` or `.yml`, else JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    pub fn of(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Self::Yaml,
            _ => Self::Json,
        }
    }
}

/// Reads a policy document: `{"name": "rule string" | [[...], ...]}` in JSON, or the same map
/// in YAML (`name: "rule string"`, oslo.policy's `policy.yaml`).
pub fn parse_document(text: &str, format: Format) -> Result<Rules, String> {
    let doc: serde_json::Map<String, Value> = match format {
        Format::Json => {
            serde_json::from_str(text).map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?
        }
        Format::Yaml if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) => {
            serde_json::Map::new() // a file of comments only (oslo's generated sample)
        }
        Format::Yaml => serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
            Some(at) => format!("line {}, column {}: {e}", at.line(), at.column()),
            None => e.to_string(),
        })?,
    };
    doc.into_iter()
        .map(|(name, value)| {
            let rule = match &value {
                Value::String(s) => parse_rule(s),
                Value::Array(alternatives) => list_rule(alternatives),
                _ => Err("a rule must be a string or a list".into()),
            }
            .map_err(|e| format!("rule '{name}': {e}"))?;
            Ok((name, rule))
        })
        .collect()
}

/// The old list form: a list of alternatives, each a list of checks that must all pass.
fn list_rule(alternatives: &[Value]) -> Result<Rule, String> {
    if alternatives.is_empty() {
        return Ok(Rule::Allow);
    }
    let mut any = Vec::new();
    for alternative in alternatives {
        let checks = alternative.as_array().ok_or("expected a list of checks")?;
        let all = checks
            .iter()
            .map(|c| c.as_str().ok_or_else(|| "a check must be a string".to_string()).and_then(check))
            .collect::<Result<Vec<_>, _>>()?;
        any.push(Rule::And(all));
    }
    Ok(Rule::Or(any))
}

/// The policy enforcer shared by every request of a process.
#[derive(Debug, Clone)]
pub struct Policy {
    file: Option<PathBuf>,
    default_rule: String,
    rules: Arc<RwLock<Rules>>,
    /// The file's mtime when it was last read.
    mtime: Arc<Mutex<Option<SystemTime>>>,
}

/// Glance's built-in rules when no policy file exists.
fn builtin() -> Rules {
    Rules::from([
        ("context_is_admin".into(), Rule::Role("admin".into())),
        ("default".into(), Rule::Allow),
        ("manage_image_cache".into(), Rule::Role("admin".into())),
    ])
}

impl Policy {
    /// Loads `file` (a missing file means the built-in rules). A file that does not parse is
    /// a start-up error naming the line.
    pub fn load(file: Option<PathBuf>, default_rule: &str) -> Result<Self, String> {
        let mut rules = builtin();
        let mut mtime = None;
        if let Some(path) = file.as_ref().filter(|p| p.exists()) {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            rules.extend(parse_document(&text, Format::of(path)).map_err(|e| format!("{}: {e}", path.display()))?);
            mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        }
        Ok(Self {
            file,
            default_rule: default_rule.to_string(),
            rules: Arc::new(RwLock::new(rules)),
            mtime: Arc::new(Mutex::new(mtime)),
        })
    }

    /// Re-reads the file if its mtime changed. The stat happens outside any lock; only the
    /// (rare) reload takes the write lock, so checks do not queue behind each other.
    fn refresh(&self) {
        let Some(path) = &self.file else { return };
        let Ok(mtime) = std::fs::metadata(path).and_then(|m| m.modified()) else { return };
        {
            let mut seen = self.mtime.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == Some(mtime) {
                return;
            }
            *seen = Some(mtime);
        }
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_document(&t, Format::of(path)))
        {
            Ok(rules) => {
                log::info!("reloaded policy rules from {}", path.display());
                self.rules.write().unwrap_or_else(|p| p.into_inner()).extend(rules);
            }
            Err(e) => log::error!("policy file {} not reloaded, previous rules stay in force: {e}", path.display()),
        }
    }

    /// Whether `ctx` may perform `action` on `target` (the image's fields and properties).
    pub fn allows(&self, action: &str, ctx: &RequestContext, target: &HashMap<&str, String>) -> bool {
        self.refresh();
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        match rules.get(action).or_else(|| rules.get(&self.default_rule)) {
            Some(rule) => eval(rule, &rules, ctx, target, 0),
            None => false,
        }
    }

    /// Whether the named rule passes, as `rule:<name>` does (a rule nobody defined denies).
    pub fn allows_rule(&self, name: &str, ctx: &RequestContext, target: &HashMap<&str, String>) -> bool {
        self.refresh();
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        rules.get(name).is_some_and(|rule| eval(rule, &rules, ctx, target, 0))
    }

    /// 403 with Glance's default body unless `ctx` may perform `action`.
    pub fn enforce(&self, action: &str, ctx: &RequestContext, target: &HashMap<&str, String>) -> Result<(), Error> {
        if self.allows(action, ctx, target) {
            Ok(())
        } else {
            log::debug!(req = ctx.request_id.as_str(); "policy denies {action}");
            Err(Error::forbidden("You are not authorized to complete this action."))
        }
    }
}

/// `context_is_admin`: who counts as an admin beyond `admin_role`.
impl glance_common::context::AdminRule for Policy {
    fn is_admin(&self, ctx: &RequestContext) -> bool {
        self.allows("context_is_admin", ctx, &HashMap::new())
    }
}

fn eval(rule: &Rule, rules: &Rules, ctx: &RequestContext, target: &HashMap<&str, String>, depth: u8) -> bool {
    if depth > 16 {
        return false; // a rule that refers to itself
    }
    let credential = |field: &str| -> Option<String> {
        match field {
            "tenant" | "project_id" => ctx.tenant.clone(),
            "user" | "user_id" => ctx.user.clone(),
            _ => None,
        }
    };
    match rule {
        Rule::Allow => true,
        Rule::Deny => false,
        Rule::Role(role) => ctx.roles.iter().any(|r| r == role),
        Rule::Rule(name) => rules.get(name).is_some_and(|r| eval(r, rules, ctx, target, depth + 1)),
        Rule::IsAdmin(wanted) => ctx.is_admin == *wanted,
        Rule::TargetMatch { credential: c, target: t } => {
            matches!((credential(c), target.get(t.as_str())), (Some(a), Some(b)) if a == *b)
        }
        Rule::Literal { field, value } => credential(field).is_some_and(|v| v == *value),
        Rule::LiteralMatch { literal, target: t } => target.get(t.as_str()).is_some_and(|v| v == literal),
        Rule::Not(inner) => !eval(inner, rules, ctx, target, depth + 1),
        Rule::And(all) => all.iter().all(|r| eval(r, rules, ctx, target, depth + 1)),
        Rule::Or(any) => any.iter().any(|r| eval(r, rules, ctx, target, depth + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(roles: &[&str], tenant: Option<&str>) -> RequestContext {
        RequestContext {
            is_admin: false,
            tenant: tenant.map(str::to_string),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..RequestContext::admin("req-t".into())
        }
    }

    #[test]
    fn language() {
        let rules = parse_document(
            r#"{"admin": "role:admin", "owner": "tenant:%(owner)s", "either": "rule:admin or (rule:owner and not role:banned)",
                "nobody": "!", "anybody": "", "old": [["role:a", "role:b"], ["role:c"]]}"#,
            Format::Json,
        )
        .expect("rules");
        let target = HashMap::from([("owner", "t1".to_string())]);
        let ev = |name: &str, c: &RequestContext| eval(&rules[name], &rules, c, &target, 0);
        assert!(ev("either", &ctx(&["admin"], None)));
        assert!(ev("either", &ctx(&[], Some("t1"))));
        assert!(!ev("either", &ctx(&["banned"], Some("t1"))));
        assert!(!ev("either", &ctx(&[], Some("t2"))));
        assert!(!ev("nobody", &ctx(&["admin"], None)) && ev("anybody", &ctx(&[], None)));
        assert!(ev("old", &ctx(&["a", "b"], None)) && ev("old", &ctx(&["c"], None)) && !ev("old", &ctx(&["a"], None)));
    }

    #[test]
    fn glance_docs_download_restriction() {
        // policies.rst, "Restricting image downloads".
        let rules = parse_document(
            r#"{"download_image": "role:admin or rule:restricted",
                "restricted": "not ('aki':%(container_format)s and role:_member_)"}"#,
            Format::Json,
        )
        .expect("rules");
        let aki = HashMap::from([("container_format", "aki".to_string())]);
        let bare = HashMap::from([("container_format", "bare".to_string())]);
        let ev = |c: &RequestContext, t: &HashMap<&str, String>| eval(&rules["download_image"], &rules, c, t, 0);
        assert!(!ev(&ctx(&["_member_"], Some("t")), &aki));
        assert!(ev(&ctx(&["_member_"], Some("t")), &bare));
        assert!(ev(&ctx(&["admin"], Some("t")), &aki));
    }

    #[test]
    fn yaml_policies_as_oslo_writes_them() {
        let yaml = "# Defaults are commented out, as oslopolicy-sample-generator writes them.\n\
                    #\"get_image\": \"\"\n\
                    \"context_is_admin\": \"role:admin\"\n\
                    download_image: 'role:admin or project_id:%(owner)s'\n\
                    old:\n  - [\"role:a\"]\n";
        let rules = parse_document(yaml, Format::Yaml).expect("yaml");
        let owner = HashMap::from([("owner", "t1".to_string())]);
        assert!(eval(&rules["download_image"], &rules, &ctx(&[], Some("t1")), &owner, 0));
        assert!(!eval(&rules["download_image"], &rules, &ctx(&[], Some("t2")), &owner, 0));
        assert!(eval(&rules["old"], &rules, &ctx(&["a"], None), &owner, 0) && !rules.contains_key("get_image"));
        assert!(parse_document("# nothing but comments\n", Format::Yaml).expect("empty").is_empty());
        let err = parse_document("a: role:x\nb: [unclosed\n", Format::Yaml).unwrap_err();
        assert!(err.contains("line"), "{err}");
        assert_eq!(Format::of(std::path::Path::new("/etc/glance/policy.yaml")), Format::Yaml);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_document("{\n\"a\": \"role:x\",\n oops\n}", Format::Json).unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(parse_document(r#"{"a": "role:x and"}"#, Format::Json).is_err());
        assert!(parse_document(r#"{"a": "(role:x"}"#, Format::Json).is_err());
    }

    #[test]
    fn reload_merges_and_bad_files_keep_old_rules() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("policy.json");
        std::fs::write(&path, r#"{"get_image": "", "download_image": ""}"#).expect("write");
        let policy = Policy::load(Some(path.clone()), "default").expect("load");
        let admin = RequestContext::admin("r".into());
        let none = HashMap::new();
        assert!(policy.allows("download_image", &admin, &none));
        std::fs::write(&path, r#"{"download_image": "!"}"#).expect("write");
        bump_mtime(&path);
        assert!(!policy.allows("download_image", &admin, &none));
        assert!(policy.allows("get_image", &admin, &none), "rules not in the new file stay");
        std::fs::write(&path, "{broken").expect("write");
        bump_mtime(&path);
        assert!(!policy.allows("download_image", &admin, &none), "a broken file keeps the old rules");
    }

    fn bump_mtime(path: &std::path::Path) {
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(path).and_then(|f| f.set_modified(later)).expect("touch");
    }
}
