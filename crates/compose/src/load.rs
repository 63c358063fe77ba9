//! Finding, reading and merging a project's compose files, as `docker compose` does:
//! `-f` files in order (else `COMPOSE_FILE`, else the first default name found in the
//! working directory or a parent, plus its override file), each interpolated from the
//! environment and `.env`, checked against the schema's keys, then merged in order.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::error::ComposeError;
use crate::interpolate::Interpolator;
use crate::model::ComposeFile;

/// The largest compose or env file read. Real ones are kilobytes; the YAML tree costs
/// many times its text in memory, so this keeps a hostile file's tree bounded.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// compose-go's default names, in its order of preference.
const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The override file read after a default file found in the same directory.
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What the command line says about where the project is.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// `-f`, in order; relative to `cwd`.
    pub files: Vec<PathBuf>,
    pub project_directory: Option<PathBuf>,
    /// `--env-file`, in order; when empty, `<project directory>/.env` if present.
    pub env_files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    pub cwd: PathBuf,
}

/// A loaded project. No `Debug`: its environment may hold secret values.
pub struct Project {
    pub name: String,
    /// Where relative paths in the files point from.
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub model: ComposeFile,
    /// The process environment over the `.env` values (the process wins, as in compose).
    pub env: BTreeMap<String, String>,
    /// Warnings compose would print (unset variables, several default files).
    pub warnings: Vec<String>,
}

impl Project {
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}

/// Loads the project; `os_env` is the process environment.
pub fn load(opts: &LoadOptions, os_env: BTreeMap<String, String>) -> Result<Project, ComposeError> {
    let mut warnings = Vec::new();
    let files = compose_files(opts, &os_env, &mut warnings)?;
    let dir = match &opts.project_directory {
        Some(d) => opts.cwd.join(d),
        None => files
            .first()
            .and_then(|f| f.parent())
            .map_or_else(|| opts.cwd.clone(), Path::to_path_buf),
    };
    let mut env = dotenv(opts, &dir)?;
    env.extend(os_env);
    let mut merged = Value::Mapping(Mapping::new());
    let lookup = |name: &str| env.get(name).cloned();
    let mut interpolator = Interpolator::new(&lookup);
    for file in &files {
        let doc = read_file(file, &mut interpolator)?;
        crate::merge::merge(&mut merged, doc);
    }
    warnings.extend(interpolator.warnings());
    let model: ComposeFile =
        serde_path_to_error::deserialize(merged).map_err(|e| ComposeError::Model {
            at: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    let name = project_name(opts, &model, &env, &dir);
    Ok(Project {
        name,
        dir,
        files,
        model,
        env,
        warnings,
    })
}

/// One file: parsed, `<<` merge keys applied, interpolated, checked, normalised.
fn read_file(path: &Path, interpolator: &mut Interpolator<'_>) -> Result<Value, ComposeError> {
    let text = read_bounded(path)?;
    let yaml = |source| ComposeError::Yaml {
        path: path.to_owned(),
        source,
    };
    let mut doc: Value = serde_yaml_ng::from_str(&text).map_err(yaml)?;
    if doc.is_null() {
        // An empty file is an empty project.
        doc = Value::Mapping(Mapping::new());
    }
    doc.apply_merge().map_err(yaml)?;
    if !doc.is_mapping() {
        return Err(ComposeError::Shape {
            path: path.display().to_string(),
            message: "Top-level object must be a mapping".into(),
        });
    }
    interpolator
        .value(&mut doc, "")
        .map_err(|source| ComposeError::Interpolate {
            path: path.to_owned(),
            source,
        })?;
    crate::schema::validate(&doc, &path.display().to_string())?;
    crate::merge::normalize(&mut doc);
    Ok(doc)
}

fn read_bounded(path: &Path) -> Result<String, ComposeError> {
    let read = |source| ComposeError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ComposeError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// The files to read, absolute, in merge order.
fn compose_files(
    opts: &LoadOptions,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, ComposeError> {
    if !opts.files.is_empty() {
        return Ok(opts.files.iter().map(|f| opts.cwd.join(f)).collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE").filter(|l| !l.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .map_or(":", String::as_str);
        return Ok(list.split(sep).map(|f| opts.cwd.join(f)).collect());
    }
    let start = opts
        .project_directory
        .as_ref()
        .map_or_else(|| opts.cwd.clone(), |d| opts.cwd.join(d));
    for dir in start.ancestors() {
        let Some(main) = first_existing(dir, &DEFAULT_FILES, warnings) else {
            continue;
        };
        let mut files = vec![main];
        files.extend(first_existing(dir, &OVERRIDE_FILES, warnings));
        return Ok(files);
    }
    Err(ComposeError::NotFound { dir: start })
}

/// The first of `names` present in `dir`; compose warns when several are.
fn first_existing(dir: &Path, names: &[&str], warnings: &mut Vec<String>) -> Option<PathBuf> {
    let found: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    if found.len() > 1 {
        let list: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        warnings.push(format!(
            "Found multiple config files with supported names: {}\nUsing {}",
            list.join(", "),
            list[0]
        ));
    }
    found.into_iter().next()
}

/// The `.env` values: `--env-file`s in order (each must exist), else the project
/// directory's `.env` if there is one.
fn dotenv(opts: &LoadOptions, dir: &Path) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut out = BTreeMap::new();
    let default = dir.join(".env");
    let paths: Vec<PathBuf> = if opts.env_files.is_empty() {
        default.is_file().then_some(default).into_iter().collect()
    } else {
        opts.env_files.iter().map(|f| opts.cwd.join(f)).collect()
    };
    for path in paths {
        if !path.is_file() {
            return Err(ComposeError::EnvFileMissing { path });
        }
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_FILE_BYTES) {
            return Err(ComposeError::TooLarge { path });
        }
        let failed = |source| ComposeError::EnvFile {
            path: path.clone(),
            source,
        };
        for item in dotenvy::from_path_iter(&path).map_err(failed)? {
            let (key, value) = item.map_err(failed)?;
            out.insert(key, value);
        }
    }
    Ok(out)
}

/// `-p`, else the file's `name:`, else `COMPOSE_PROJECT_NAME`, else the project
/// directory's name; normalised as compose does (lowercase, `[a-z0-9_-]`).
fn project_name(
    opts: &LoadOptions,
    model: &ComposeFile,
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> String {
    let raw = opts
        .project_name
        .clone()
        .or_else(|| model.name.clone())
        .or_else(|| env.get("COMPOSE_PROJECT_NAME").cloned())
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    name.trim_start_matches(['_', '-']).to_owned()
}
