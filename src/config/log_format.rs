//! `log_format NAME [escape=default|json|none] STRING ...;` compiled once,
//! at configuration time, into literal bytes and variables, so that a log
//! line is a walk over a short list (no `format!`, no parsing per request).
//!
//! Variables are nginx's, written `$name` or `${name}`: the set CONFIG.md
//! lists, plus `$http_NAME` (a request header, `_` for `-`) and
//! `$sent_http_NAME` (a response header). An unknown one is a
//! configuration error, as in nginx.

/// How variable values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// nginx's default: `"`, `\`, control bytes and bytes from 0x7f as
    /// `\xHH`; an absent value is `-`.
    Default,
    /// JSON string content: `"` and `\` escaped, `\n` `\r` `\t` `\b` `\f`,
    /// other control bytes and bytes that are not UTF-8 as `\u00HH`; an
    /// absent value is empty.
    Json,
    /// As is; an absent value is `-`.
    None,
}

/// One variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Var {
    RemoteAddr,
    RemoteUser,
    TimeLocal,
    TimeIso8601,
    Msec,
    Request,
    RequestMethod,
    Uri,
    Args,
    Status,
    BodyBytesSent,
    BytesSent,
    RequestLength,
    RequestTime,
    /// A request header, lowercased, with `-` for `_`.
    Http(String),
    /// A response header, lowercased, with `-` for `_`.
    SentHttp(String),
    Host,
    ServerName,
    ServerPort,
    Connection,
    ConnectionRequests,
    Pid,
}

impl Var {
    /// Known when the request head is parsed (so kept from it), rather
    /// than when the answer ends.
    pub fn from_head(&self) -> bool {
        matches!(
            self,
            Var::RemoteUser
                | Var::Request
                | Var::RequestMethod
                | Var::Uri
                | Var::Args
                | Var::Http(_)
                | Var::Host
                | Var::ServerName
                | Var::ServerPort
                | Var::RequestLength
        )
    }
}

/// A piece of a format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Lit(Vec<u8>),
    Var(Var),
}

/// A compiled `log_format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFormat {
    pub name: String,
    pub escape: Escape,
    pub items: Vec<Item>,
    /// How many of `items` are head variables (`Var::from_head`).
    pub head_vars: usize,
}

impl LogFormat {
    /// A format of `items`.
    pub fn new(name: &str, escape: Escape, items: Vec<Item>) -> LogFormat {
        let head_vars = items
            .iter()
            .filter(|i| matches!(i, Item::Var(v) if v.from_head()))
            .count();
        LogFormat {
            name: name.to_string(),
            escape,
            items,
            head_vars,
        }
    }

    /// Whether a line needs the answer's head kept (`$sent_http_*`).
    pub fn wants_sent_headers(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i, Item::Var(Var::SentHttp(_))))
    }
}

/// The variable called `name`.
fn var(name: &str) -> Option<Var> {
    let header = |rest: &str| rest.to_ascii_lowercase().replace('_', "-");
    Some(match name {
        "remote_addr" => Var::RemoteAddr,
        "remote_user" => Var::RemoteUser,
        "time_local" => Var::TimeLocal,
        "time_iso8601" => Var::TimeIso8601,
        "msec" => Var::Msec,
        "request" => Var::Request,
        "request_method" => Var::RequestMethod,
        "uri" => Var::Uri,
        "args" => Var::Args,
        "status" => Var::Status,
        "body_bytes_sent" => Var::BodyBytesSent,
        "bytes_sent" => Var::BytesSent,
        "request_length" => Var::RequestLength,
        "request_time" => Var::RequestTime,
        "host" => Var::Host,
        "server_name" => Var::ServerName,
        "server_port" => Var::ServerPort,
        "connection" => Var::Connection,
        "connection_requests" => Var::ConnectionRequests,
        "pid" => Var::Pid,
        _ => {
            if let Some(rest) = name.strip_prefix("sent_http_").filter(|r| !r.is_empty()) {
                Var::SentHttp(header(rest))
            } else if let Some(rest) = name.strip_prefix("http_").filter(|r| !r.is_empty()) {
                Var::Http(header(rest))
            } else {
                return None;
            }
        }
    })
}

/// Compile the format strings (joined, as nginx joins them) into items.
pub fn compile(text: &str) -> Result<Vec<Item>, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut items = Vec::new();
    let mut lit = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        lit.extend_from_slice(&rest.as_bytes()[..at]);
        let after = &rest[at + 1..];
        let (name, next) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| "the variable name is not closed with \"}\"".to_string())?;
            (&braced[..end], &braced[end + 1..])
        } else {
            let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            return Err("invalid variable name".to_string());
        }
        let v = var(name).ok_or_else(|| format!("unknown \"{name}\" variable"))?;
        if !lit.is_empty() {
            items.push(Item::Lit(std::mem::take(&mut lit)));
        }
        items.push(Item::Var(v));
        rest = next;
    }
    lit.extend_from_slice(rest.as_bytes());
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    Ok(items)
}

/// `escape=...`, if `arg` is one.
pub fn escape_arg(arg: &str) -> Option<Result<Escape, String>> {
    let value = arg.strip_prefix("escape=")?;
    Some(match value {
        "default" => Ok(Escape::Default),
        "json" => Ok(Escape::Json),
        "none" => Ok(Escape::None),
        _ => Err(format!("unknown log format escaping \"{value}\"")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_and_literals() {
        let items =
            compile("$remote_addr - ${status}x $http_user_agent $sent_http_content_type").unwrap();
        assert_eq!(
            items,
            vec![
                Item::Var(Var::RemoteAddr),
                Item::Lit(b" - ".to_vec()),
                Item::Var(Var::Status),
                Item::Lit(b"x ".to_vec()),
                Item::Var(Var::Http("user-agent".into())),
                Item::Lit(b" ".to_vec()),
                Item::Var(Var::SentHttp("content-type".into())),
            ]
        );
    }

    #[test]
    fn every_listed_variable_is_known() {
        for v in [
            "remote_addr",
            "remote_user",
            "time_local",
            "time_iso8601",
            "msec",
            "request",
            "request_method",
            "uri",
            "args",
            "status",
            "body_bytes_sent",
            "bytes_sent",
            "request_length",
            "request_time",
            "http_x_y",
            "sent_http_etag",
            "host",
            "server_name",
            "server_port",
            "connection",
            "connection_requests",
            "pid",
        ] {
            assert!(compile(&format!("${v}")).is_ok(), "{v}");
        }
    }

    #[test]
    fn errors() {
        assert!(compile("$nope").unwrap_err().contains("unknown \"nope\""));
        assert!(compile("${status").is_err());
        assert!(compile("a $ b").is_err());
        assert!(compile("$http_").is_err());
        assert_eq!(escape_arg("escape=json"), Some(Ok(Escape::Json)));
        assert!(matches!(escape_arg("escape=xml"), Some(Err(_))));
        assert_eq!(escape_arg("$status"), None);
    }
}
