//! `localserver [-c FILE] [-t] [-v] [-h]`: command line → configuration →
//! `server::run`. Nothing else happens here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use localserver::server::Source;
use localserver::{SERVER_NAME, config, server};

const USAGE: &str = "\
Usage: localserver [-c FILE] [-t] [-v] [-h]

  -c FILE  use this configuration file (default: ./localserver.conf if it
           exists, else a built-in default serving ./www on 127.0.0.1:8080)
  -t       test the configuration and exit
  -v       print the version and exit
  -h       print this help and exit
";

struct Args {
    file: Option<PathBuf>,
    test: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        file: None,
        test: false,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-c") => match it.next() {
                Some(f) => args.file = Some(PathBuf::from(f)),
                None => return Err("option \"-c\" requires a file name".into()),
            },
            Some("-t") => args.test = true,
            Some("-v" | "-V" | "--version") => {
                println!("localserver version: {SERVER_NAME}");
                return Ok(None);
            }
            Some("-h" | "-?" | "--help") => {
                print!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(format!("invalid option: \"{}\"", a.to_string_lossy())),
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("localserver: [emerg] {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let default_file = Path::new("localserver.conf");
    let file = args
        .file
        .or_else(|| default_file.is_file().then(|| default_file.to_path_buf()));
    let (cfg, shown, source) = match &file {
        Some(path) => {
            let shown = path.display().to_string();
            match config::load(path, &shown) {
                Ok((cfg, warnings)) => {
                    for w in warnings {
                        eprintln!("localserver: [warn] {w}");
                    }
                    let source = Source::File {
                        path: path.clone(),
                        shown: shown.clone(),
                    };
                    (cfg, shown, source)
                }
                Err(errors) => {
                    for e in &errors {
                        eprintln!("localserver: [emerg] {e}");
                    }
                    if args.test {
                        eprintln!("localserver: configuration file {shown} test failed");
                    }
                    return ExitCode::FAILURE;
                }
            }
        }
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            (
                config::builtin_default(&cwd),
                "(built-in default)".to_string(),
                Source::Builtin { cwd },
            )
        }
    };
    if args.test {
        eprintln!("localserver: configuration {shown} test is successful");
        return ExitCode::SUCCESS;
    }
    match server::run(cfg, source) {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
