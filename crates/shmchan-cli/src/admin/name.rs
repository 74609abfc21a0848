//! How a command line names a channel: a SysV key, a SysV shmid, or a file path (the rules,
//! for `--help`, are the `names_help!` text of the parent module).

use std::path::PathBuf;

use shmchan::Backing;

use super::Error;

/// A channel named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    /// A SysV key.
    Key(i32),
    /// A SysV shmid.
    Id(i32),
    /// A file (or, for `ls`, `top` and `prune`, a directory of channel files).
    Path(PathBuf),
}

impl Name {
    /// Parses one name.
    pub fn parse(s: &str) -> Result<Name, Error> {
        if let Some(id) = s.strip_prefix("id:") {
            return id
                .parse::<i32>()
                .ok()
                .filter(|&n| n >= 0)
                .map(Name::Id)
                .ok_or_else(|| Error::BadShmid(s.to_owned()));
        }
        if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            return u32::from_str_radix(hex, 16)
                .map(|k| Name::Key(k as i32))
                .map_err(|_| Error::BadKey(s.to_owned()));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            return s
                .parse::<i32>()
                .map(Name::Key)
                .map_err(|_| Error::BadKey(s.to_owned()));
        }
        Ok(Name::Path(PathBuf::from(s)))
    }

    /// The backing this name opens.
    pub fn backing(&self) -> Backing {
        match self {
            Name::Key(k) => Backing::sysv_key(*k),
            Name::Id(id) => Backing::sysv_id(*id),
            Name::Path(p) => Backing::file(p),
        }
    }
}

/// Where one channel is, for `stat` and `rm`: a name, or a path and `--ftok PROJ`.
#[derive(clap::Args, Debug)]
pub struct Target {
    /// SysV key (hex `0x…` or decimal), `id:SHMID`, or a file path (see below).
    target: String,
    /// Treat TARGET as a path for `ftok(path, PROJ)` and name the SysV key it gives (PROJ: one
    /// character or a number).
    #[arg(long, value_name = "PROJ")]
    ftok: Option<String>,
}

impl Target {
    /// What the arguments name.
    pub fn name(&self) -> Result<Name, Error> {
        let Some(p) = &self.ftok else {
            return Name::parse(&self.target);
        };
        let proj = match p.as_bytes() {
            [c] if !c.is_ascii_digit() => *c,
            _ => p
                .parse::<u8>()
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| Error::BadProj(p.clone()))?,
        };
        let key = shmchan::os::ftok(&self.target, proj).map_err(|e| Error::Path {
            path: PathBuf::from(&self.target),
            source: e.errno().into(),
        })?;
        Ok(Name::Key(key.raw()))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ftok {
            Some(p) => write!(f, "{} --ftok {p}", self.target),
            None => f.write_str(&self.target),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(Name::parse("0x2a").unwrap(), Name::Key(42));
        assert_eq!(Name::parse("0xffffffff").unwrap(), Name::Key(-1));
        assert_eq!(Name::parse("42").unwrap(), Name::Key(42));
        assert_eq!(Name::parse("id:7").unwrap(), Name::Id(7));
        assert_eq!(Name::parse("./42").unwrap(), Name::Path("./42".into()));
        assert!(matches!(Name::parse("id:x"), Err(Error::BadShmid(_))));
        assert!(matches!(Name::parse("id:-1"), Err(Error::BadShmid(_))));
        assert!(matches!(Name::parse("0xzz"), Err(Error::BadKey(_))));
        assert!(matches!(Name::parse("99999999999"), Err(Error::BadKey(_))));
    }
}
