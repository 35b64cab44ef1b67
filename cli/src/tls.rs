//! `upshift keys tls` and the `--tls`/`--as` options: development
//! certificates, and the TLS settings of the coordinator and of the
//! commands that call it.

use std::path::{Path, PathBuf};

use upshift::rpc::tls::dev::DevCa;
use upshift::rpc::{ClientTls, Identity, Role, ServerTls, TlsFiles};

use crate::Failure;

/// What `--tls` and `--as` say.
pub struct Access {
    /// The directory of certificates, if TLS is on.
    pub dir: Option<PathBuf>,
    /// The certificate to call with (a file name without `.pem`).
    pub identity: Option<String>,
}

impl Access {
    /// The coordinator's TLS: `coordinator.pem` in the directory.
    pub fn server(&self) -> Result<Option<ServerTls>, Failure> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let tls = ServerTls::from_files(&TlsFiles::in_dir(dir, "coordinator"))
            .map_err(|e| Failure(format!("--tls {}: {e}", dir.display()), 2))?;
        eprintln!(
            "serving mutual TLS with {}",
            dir.join("coordinator.pem").display()
        );
        Ok(Some(tls))
    }

    /// A caller's TLS: the certificate `--as` names, or the directory's
    /// only operator certificate.
    pub fn client(&self) -> Result<Option<ClientTls>, Failure> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let name = match &self.identity {
            Some(name) => name.clone(),
            None => only_operator(dir)?,
        };
        ClientTls::from_files(&TlsFiles::in_dir(dir, &name))
            .map(Some)
            .map_err(|e| Failure(format!("--tls {} --as {name}: {e}", dir.display()), 2))
    }
}

fn only_operator(dir: &Path) -> Result<String, Failure> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Failure(format!("--tls {}: {e}", dir.display()), 2))?;
    let operators: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".pem").map(str::to_string))
        .filter(|n| n.starts_with("operator-"))
        .collect();
    match operators.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Failure(
            format!(
                "--tls {} holds no operator certificate; name one with --as (for example --as reader-bob)",
                dir.display()
            ),
            2,
        )),
        many => Err(Failure(
            format!(
                "--tls {} holds {} operator certificates; choose one with --as",
                dir.display(),
                many.len()
            ),
            2,
        )),
    }
}

/// `upshift keys tls`: the CA (made once), the coordinator's certificate,
/// and one per node, operator and reader.
pub fn generate(
    dir: &Path,
    nodes: &[String],
    operators: &[String],
    readers: &[String],
    hosts: &[String],
) -> Result<(), Failure> {
    let fail = |e: upshift::rpc::TlsError| Failure(e.to_string(), 2);
    let hosts: Vec<String> = if hosts.is_empty() {
        vec!["127.0.0.1".into(), "localhost".into()]
    } else {
        hosts.to_vec()
    };
    let default_operator = ["admin".to_string()];
    let operators = if operators.is_empty() {
        &default_operator[..]
    } else {
        operators
    };
    let ca = DevCa::open_or_create(dir).map_err(fail)?;
    let mut issued = vec![(
        "coordinator".to_string(),
        Identity::new(Role::Coordinator, "coordinator"),
    )];
    for (role, names) in [
        (Role::Node, nodes),
        (Role::Operator, operators),
        (Role::Reader, readers),
    ] {
        for name in names {
            if Identity::from_uri(&Identity::new(role, name.as_str()).uri()).is_none() {
                return Err(Failure(
                    format!("{role} name {name:?}: a name is 1 to 255 bytes without `/`"),
                    2,
                ));
            }
            issued.push((format!("{role}-{name}"), Identity::new(role, name.as_str())));
        }
    }
    for (file, identity) in &issued {
        ca.issue(dir, file, identity, &hosts).map_err(fail)?;
        println!(
            "{} ({})",
            dir.join(format!("{file}.pem")).display(),
            identity.uri()
        );
    }
    println!(
        "CA {} (its key {} signs new certificates: keep it off the hosts)",
        dir.join("ca.pem").display(),
        dir.join("ca.key").display()
    );
    Ok(())
}
