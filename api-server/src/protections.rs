//! Property protections (`property_protection_file`): who may create, read, update and delete
//! an image's custom properties, chosen by the first section whose regex matches the name.
//!
//! The file is Glance's INI: `[<regex>]` sections in order, each with `create`, `read`,
//! `update`, `delete` = a comma list of roles (`property_protection_rule_format = roles`) or
//! one policy rule name (`policies`). `@` allows everyone, `!` no one; an operation left out
//! allows no one, and a property no section matches is denied everything.

use crate::policy::Policy;
use glance_common::Error;
use glance_common::context::RequestContext;
use regex::Regex;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Read,
    Update,
    Delete,
}

const OPS: [(Op, &str); 4] =
    [(Op::Create, "create"), (Op::Read, "read"), (Op::Update, "update"), (Op::Delete, "delete")];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Roles,
    Policies,
}

impl Format {
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "roles" => Ok(Self::Roles),
            "policies" => Ok(Self::Policies),
            other => Err(format!(
                "Invalid value '{other}' for 'property_protection_rule_format'. The permitted values are 'roles' and 'policies'"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Everyone,
    Nobody,
    Roles(Vec<String>),
    /// A policy rule name, checked as `rule:<name>`.
    Policy(String),
}

#[derive(Debug)]
struct Section {
    pattern: Regex,
    ops: [Allowed; 4],
}

#[derive(Debug)]
pub struct Protections {
    sections: Vec<Section>,
}

impl Protections {
    /// Reads and checks the file; any fault is a start-up error that says where.
    pub fn load(path: &Path, format: Format) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("Couldn't find property protection file {}: {e}", path.display()))?;
        Self::parse(&text, format).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, format: Format) -> Result<Self, String> {
        let mut sections = Vec::new();
        for (name, options) in ini_sections(text)? {
            let pattern = Regex::new(&name)
                .map_err(|e| format!("Encountered a malformed property protection rule [{name}]: {e}"))?;
            let mut ops = [Allowed::Nobody, Allowed::Nobody, Allowed::Nobody, Allowed::Nobody];
            for (i, (_, op)) in OPS.iter().enumerate() {
                let Some(value) = options.get(*op).filter(|v| !v.is_empty()) else {
                    log::warn!(
                        "Property protection on operation {op} for rule {name} is not found. No role will be allowed to perform this operation."
                    );
                    continue;
                };
                let items: Vec<String> = value.split(',').map(|r| r.trim().to_string()).collect();
                ops[i] = match format {
                    Format::Policies if items.len() > 1 => {
                        return Err(format!(
                            "Multiple policies '{value}' not allowed for a given operation. Policies can be combined in the policy file"
                        ));
                    }
                    _ if items.iter().any(|r| r == "@") && items.iter().any(|r| r == "!") => {
                        return Err(format!(
                            "Malformed property protection rule in [{name}] {op}={value}: '@' and '!' are mutually exclusive"
                        ));
                    }
                    _ if items.iter().any(|r| r == "!") => Allowed::Nobody,
                    _ if items.iter().any(|r| r == "@") => Allowed::Everyone,
                    Format::Policies => Allowed::Policy(items[0].clone()),
                    Format::Roles => Allowed::Roles(items.into_iter().map(|r| r.to_lowercase()).collect()),
                };
            }
            sections.push(Section { pattern, ops });
        }
        Ok(Self { sections })
    }

    /// Whether `ctx` may perform `op` on the property `name`.
    pub fn allows(&self, name: &str, op: Op, ctx: &RequestContext, policy: &Policy) -> bool {
        let Some(section) = self.sections.iter().find(|s| s.pattern.is_match(name)) else {
            return false;
        };
        let index = OPS.iter().position(|(o, _)| *o == op).unwrap_or(0);
        match &section.ops[index] {
            Allowed::Everyone => true,
            Allowed::Nobody => false,
            Allowed::Roles(roles) => ctx.roles.iter().any(|r| roles.contains(r)),
            Allowed::Policy(rule) => policy.allows_rule(rule, ctx, &Default::default()),
        }
    }

    /// 403 `Property '<name>' is protected` unless `op` is allowed.
    pub fn enforce(&self, name: &str, op: Op, ctx: &RequestContext, policy: &Policy) -> Result<(), Error> {
        if self.allows(name, op, ctx, policy) { Ok(()) } else { Err(protected(name)) }
    }
}

pub fn protected(name: &str) -> Error {
    Error::forbidden(format!("Property '{name}' is protected"))
}

type IniSection = (String, BTreeMap<String, String>);

/// Sections in file order with their options (names lower-cased, as Python's ConfigParser).
fn ini_sections(text: &str) -> Result<Vec<IniSection>, String> {
    let mut sections: Vec<IniSection> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let end = rest.rfind(']').ok_or_else(|| format!("line {}: a section header needs ']'", n + 1))?;
            sections.push((rest[..end].to_string(), BTreeMap::new()));
            continue;
        }
        let (key, value) = line
            .split_once(['=', ':'])
            .ok_or_else(|| format!("line {}: expected 'option = value', found '{trimmed}'", n + 1))?;
        let (_, options) =
            sections.last_mut().ok_or_else(|| format!("line {}: an option before any [section]", n + 1))?;
        options.insert(key.trim().to_lowercase(), value.trim().to_string());
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(roles: &[&str]) -> RequestContext {
        RequestContext {
            is_admin: false,
            tenant: Some("t".into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..RequestContext::admin("req-t".into())
        }
    }

    fn policy(rules: &str) -> Policy {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("policy.json");
        std::fs::write(&path, rules).expect("write");
        Policy::load(Some(path), "default").expect("policy")
    }

    const ROLES: &str = include_str!("../../deploy/etc/property-protections-roles.conf");
    const POLICIES: &str = include_str!("../../deploy/etc/property-protections-policies.conf");

    #[test]
    fn roles_format_first_match_wins() {
        let p = Protections::parse(ROLES, Format::Roles).expect("rules");
        let pol = policy("{}");
        let member = ctx(&["member"]);
        assert!(p.allows("x_owner_foo", Op::Create, &member, &pol));
        assert!(!p.allows("x_owner_foo", Op::Create, &ctx(&["reader"]), &pol));
        assert!(!p.allows("x_none_read", Op::Read, &ctx(&["admin"]), &pol));
        assert!(!p.allows("x_none_read", Op::Delete, &member, &pol));
        assert!(
            p.allows("x_none_update", Op::Delete, &member, &pol)
                && !p.allows("x_none_update", Op::Update, &member, &pol)
        );
        assert!(p.allows("x_all_permitted_1", Op::Update, &ctx(&[]), &pol));
        assert!(!p.allows("a_x_all_permitted", Op::Update, &ctx(&[]), &pol), "anchored");
        assert!(!p.allows("other", Op::Create, &member, &pol));
        assert!(p.allows("other", Op::Read, &ctx(&["admin"]), &pol));
        let only_owner = Protections::parse("[^x_owner_.*]\nread = admin\n", Format::Roles).expect("rules");
        assert!(!only_owner.allows("x_owner_a", Op::Delete, &ctx(&["admin"]), &pol), "left out: no one");
        assert!(!only_owner.allows("unmatched", Op::Read, &ctx(&["admin"]), &pol), "no section: denied");
    }

    #[test]
    fn policies_format_checks_named_rules() {
        let p = Protections::parse(POLICIES, Format::Policies).expect("rules");
        let pol = policy(r#"{"glance_creator": "role:admin or role:spl_role"}"#);
        assert!(p.allows("x_owner_a", Op::Create, &ctx(&["spl_role"]), &pol));
        assert!(!p.allows("x_owner_a", Op::Create, &ctx(&["member"]), &pol));
        assert!(p.allows("x_all_permitted_a", Op::Delete, &ctx(&["member"]), &pol));
        assert!(!p.allows("x_none_permitted_a", Op::Read, &ctx(&["admin"]), &pol));
        assert!(p.allows("other", Op::Read, &ctx(&["admin"]), &pol), "context_is_admin is role:admin");
        assert!(!p.allows("other", Op::Read, &ctx(&["member"]), &pol));
    }

    #[test]
    fn malformed_files_are_refused() {
        let err = |text: &str, format| Protections::parse(text, format).unwrap_err();
        assert!(err("[a]\ncreate = @,!\n", Format::Roles).contains("mutually exclusive"));
        assert!(err("[a]\ncreate = one,two\n", Format::Policies).contains("Multiple policies"));
        assert!(err("[x(]\nread = @\n", Format::Roles).contains("malformed"));
        assert!(err("read = @\n", Format::Roles).contains("before any [section]"));
        assert!(err("[a]\nnonsense\n", Format::Roles).contains("line 2"));
        assert!(Format::parse("acl").is_err());
    }
}
