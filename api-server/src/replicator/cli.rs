//! glance-replicator's command line, as Glance's optparse one: `<command> [options] [args]`,
//! the same options, help texts and argument errors.

use super::Error;
use clap::Parser;
use std::fmt;
use std::path::PathBuf;

pub const USAGE: &str = "glance-replicator <command> [options] [args]";

pub const COMMANDS: &str = "Commands:

    help <command>  Output help for one of the commands below

    compare         What is missing from the slave glance?
    dump            Dump the contents of a glance instance to local disk.
    livecopy        Load the contents of one glance instance into another.
    load            Load the contents of a local directory into glance.
    size            Determine the size of a glance instance if dumped to disk.
";

/// The fields Glance does not replicate unless told otherwise.
pub const DEFAULT_DONTREPLICATE: &str = "created_at date deleted_at location updated_at";

#[derive(Parser, Debug)]
#[command(
    name = "glance-replicator",
    override_usage = USAGE,
    after_help = COMMANDS,
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Args {
    /// Amount of data to transfer per HTTP write (at most 64 MiB: it is a buffer's size).
    #[arg(short, long, default_value_t = 65536, value_parser = clap::value_parser!(u32).range(1..=64 << 20))]
    pub chunksize: u32,
    /// Print debugging information.
    #[arg(short, long)]
    pub debug: bool,
    /// List of fields to not replicate (space-separated).
    #[arg(short = 'D', long, default_value = DEFAULT_DONTREPLICATE)]
    pub dontreplicate: String,
    /// Only replicate metadata, not images.
    #[arg(short, long)]
    pub metaonly: bool,
    /// Path of file to log to.
    #[arg(short, long)]
    pub logfile: Option<PathBuf>,
    /// Log to syslog instead of a file.
    #[arg(short, long)]
    pub syslog: bool,
    /// Pass in your authentication token if you have one. If you use this option the same token
    /// is used for both the master and the slave.
    #[arg(short, long, default_value = "", hide_default_value = true)]
    pub token: String,
    /// Pass in your authentication token if you have one. This is the token used for the master.
    #[arg(short = 'M', long, default_value = "", hide_default_value = true)]
    pub mastertoken: String,
    /// Pass in your authentication token if you have one. This is the token used for the slave.
    #[arg(short = 'S', long, default_value = "", hide_default_value = true)]
    pub slavetoken: String,
    /// Print more verbose output.
    #[arg(short, long)]
    pub verbose: bool,
    /// compare, dump, livecopy, load, size, or help <command>.
    pub command: Option<String>,
    /// The command's arguments: server:port, then a path or a second server:port.
    pub args: Vec<String>,
}

impl Args {
    /// `(master, slave)`: `--token` sets both, as in Glance.
    pub fn tokens(&self) -> (String, String) {
        if self.token.is_empty() {
            (self.mastertoken.clone(), self.slavetoken.clone())
        } else {
            (self.token.clone(), self.token.clone())
        }
    }

    pub fn dontreplicate(&self) -> Vec<String> {
        self.dontreplicate.split_whitespace().map(str::to_string).collect()
    }
}

/// A glance server given as `host:port`.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// A name, an IPv4 address, or an IPv6 address in brackets.
    pub host: String,
    pub port: u16,
}

impl Server {
    /// Glance checked `\w+:\w+`, which also refused dotted addresses (fixed upstream later);
    /// here a host is a name or address and the port a number.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = || Error::Usage("Bad format of the given arguments.".into());
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let name = |h: &str| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        let v6 = |h: &str| {
            h.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
        };
        if !(name(host) || v6(host)) || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let port = port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?;
        Ok(Self { host: host.to_string(), port })
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A command with its arguments checked.
#[derive(Debug, PartialEq)]
pub enum Command {
    Size { server: Server },
    Dump { server: Server, path: PathBuf },
    Load { server: Server, path: PathBuf },
    Livecopy { master: Server, slave: Server },
    Compare { master: Server, slave: Server },
}

pub const NAMES: &[&str] = &["compare", "dump", "livecopy", "load", "size"];

impl Command {
    /// `Ok(None)` for an unknown command. Glance takes its arguments from the end of the list,
    /// so extra leading ones are ignored (with a warning here).
    pub fn parse(name: &str, args: &[String]) -> Result<Option<Self>, Error> {
        let wanted = match name {
            "size" => 1,
            "dump" | "load" | "livecopy" | "compare" => 2,
            _ => return Ok(None),
        };
        if args.len() < wanted {
            return Err(Error::Usage("Too few arguments.".into()));
        }
        let (ignored, args) = args.split_at(args.len() - wanted);
        if !ignored.is_empty() {
            log::warn!("Ignoring extra arguments: {}", ignored.join(" "));
        }
        let command = match name {
            "size" => Self::Size { server: Server::parse(&args[0])? },
            "dump" => Self::Dump { server: Server::parse(&args[0])?, path: PathBuf::from(&args[1]) },
            "load" => Self::Load { server: Server::parse(&args[0])?, path: PathBuf::from(&args[1]) },
            // Glance checks the slave before the master; the error is the same either way.
            "livecopy" => Self::Livecopy { slave: Server::parse(&args[1])?, master: Server::parse(&args[0])? },
            _ => Self::Compare { slave: Server::parse(&args[1])?, master: Server::parse(&args[0])? },
        };
        Ok(Some(command))
    }
}

/// A command's help, as Glance's docstrings give it.
pub fn doc(name: &str) -> Option<&'static str> {
    Some(match name {
        "help" => {
            "glance-replicator help <command>

    Output help for one of the commands.
"
        }
        "size" => {
            "glance-replicator size <server:port>

    Determine the size of a glance instance if dumped to disk.

    server:port: the location of the glance instance.
"
        }
        "dump" => {
            "glance-replicator dump <server:port> <path>

    Dump the contents of a glance instance to local disk.

    server:port: the location of the glance instance.
    path:        a directory on disk to contain the data.
"
        }
        "load" => {
            "glance-replicator load <server:port> <path>

    Load the contents of a local directory into glance.

    server:port: the location of the glance instance.
    path:        a directory on disk containing the data.
"
        }
        "livecopy" => {
            "glance-replicator livecopy <fromserver:port> <toserver:port>

    Load the contents of one glance instance into another.

    fromserver:port: the location of the master glance instance.
    toserver:port:   the location of the slave glance instance.
"
        }
        "compare" => {
            "glance-replicator compare <fromserver:port> <toserver:port>

    Compare the contents of fromserver with those of toserver.

    fromserver:port: the location of the master glance instance.
    toserver:port:   the location of the slave glance instance.
"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn no_args_error(name: &str) -> bool {
        matches!(Command::parse(name, &[]), Err(Error::Usage(m)) if m == "Too few arguments.")
    }

    fn bad_args_error(name: &str, list: &[&str]) -> bool {
        matches!(Command::parse(name, &args(list)), Err(Error::Usage(m)) if m == "Bad format of the given arguments.")
    }

    #[test]
    fn test_replication_size_with_no_args() {
        assert!(no_args_error("size"));
    }

    #[test]
    fn test_replication_size_with_bad_args() {
        assert!(bad_args_error("size", &["aaa"]));
    }

    #[test]
    fn test_replication_dump_with_no_args() {
        assert!(no_args_error("dump"));
        assert!(matches!(Command::parse("dump", &args(&["localhost:9292"])), Err(Error::Usage(_))));
    }

    #[test]
    fn test_replication_dump_with_bad_args() {
        assert!(bad_args_error("dump", &["aaa", "bbb"]));
    }

    #[test]
    fn test_replication_load_with_no_args() {
        assert!(no_args_error("load"));
    }

    #[test]
    fn test_replication_load_with_bad_args() {
        assert!(bad_args_error("load", &["aaa", "bbb"]));
    }

    #[test]
    fn test_replication_livecopy_with_no_args() {
        assert!(no_args_error("livecopy"));
    }

    #[test]
    fn test_replication_livecopy_with_bad_args() {
        assert!(bad_args_error("livecopy", &["aaa", "bbb"]));
        assert!(bad_args_error("livecopy", &["localhost:9292", "bbb"]));
        assert!(bad_args_error("livecopy", &["aaa", "localhost:9292"]));
    }

    #[test]
    fn test_replication_compare_with_no_args() {
        assert!(no_args_error("compare"));
    }

    #[test]
    fn test_replication_compare_with_bad_args() {
        assert!(bad_args_error("compare", &["aaa", "bbb"]));
    }

    #[test]
    fn servers() {
        let ok = |s: &str| Server::parse(s).map(|s| s.to_string()).ok();
        assert_eq!(ok("localhost:9292").as_deref(), Some("localhost:9292"));
        assert_eq!(ok("127.0.0.1:9292").as_deref(), Some("127.0.0.1:9292"));
        assert_eq!(ok("glance-1.example.org:80").as_deref(), Some("glance-1.example.org:80"));
        assert_eq!(ok("[::1]:9292").as_deref(), Some("[::1]:9292"));
        for bad in ["aaa", ":9292", "host:", "host:abc", "host:99999", "host:0", "a b:1", "[zz]:1", "http://h:1"] {
            assert_eq!(ok(bad), None, "{bad}");
        }
    }

    #[test]
    fn commands() {
        assert_eq!(Command::parse("bogus", &[]).expect("no error"), None);
        let dump = Command::parse("dump", &args(&["localhost:9292", "/tmp/d"])).expect("ok").expect("known");
        assert_eq!(
            dump,
            Command::Dump { server: Server { host: "localhost".into(), port: 9292 }, path: PathBuf::from("/tmp/d") }
        );
        let copy = Command::parse("livecopy", &args(&["a:1", "b:2"])).expect("ok").expect("known");
        assert!(matches!(copy, Command::Livecopy { master, slave } if master.port == 1 && slave.port == 2));
        for name in NAMES {
            assert!(doc(name).is_some_and(|d| d.contains(name)));
        }
    }

    #[test]
    fn options() {
        let parsed = Args::try_parse_from(["glance-replicator", "size", "-t", "tok", "localhost:9292", "-M", "m"])
            .expect("parse");
        assert_eq!(parsed.command.as_deref(), Some("size"));
        assert_eq!(parsed.args, ["localhost:9292"]);
        assert_eq!(parsed.tokens(), ("tok".to_string(), "tok".to_string()));
        assert_eq!(parsed.dontreplicate(), ["created_at", "date", "deleted_at", "location", "updated_at"]);
        assert_eq!(parsed.chunksize, 65536);
        let parsed =
            Args::try_parse_from(["glance-replicator", "-M", "m", "-S", "s", "-D", "a  b", "load"]).expect("parse");
        assert_eq!(parsed.tokens(), ("m".to_string(), "s".to_string()));
        assert_eq!(parsed.dontreplicate(), ["a", "b"]);
        assert!(Args::try_parse_from(["glance-replicator", "-c", "0", "size"]).is_err());
        assert!(Args::try_parse_from(["glance-replicator", "-c", "big", "size"]).is_err());
        assert!(Args::try_parse_from(["glance-replicator", "-c", "4294967295", "size"]).is_err());
    }
}
