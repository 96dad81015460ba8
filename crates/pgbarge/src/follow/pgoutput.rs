//! The `pgoutput` logical decoding format (protocol version 1, text values), as returned
//! by `pg_logical_slot_peek_binary_changes`: one message per row.
//!
//! Only what following needs is kept; messages pgbarge does not act on (types, origins,
//! logical messages) decode to [`Message::Other`]. See "Logical Replication Message
//! Formats" in the PostgreSQL documentation.

use std::fmt;

/// A log sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl std::str::FromStr for Lsn {
    type Err = String;

    /// Parses PostgreSQL's `X/Y` notation.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (hi, lo) = s
            .split_once('/')
            .ok_or_else(|| format!("not an LSN: {s:?}"))?;
        let part = |p: &str| u64::from_str_radix(p, 16).map_err(|_| format!("not an LSN: {s:?}"));
        Ok(Lsn((part(hi)? << 32) | part(lo)?))
    }
}

/// `pg_lsn` in both of PostgreSQL's forms: binary on the wire (a big-endian `u64`, read
/// and sent as a typed value, never parsed from text), and `X/Y` where people and JSON
/// see it.
impl<'a> tokio_postgres::types::FromSql<'a> for Lsn {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes: [u8; 8] = raw.try_into().map_err(|_| "a pg_lsn is 8 bytes")?;
        Ok(Lsn(u64::from_be_bytes(bytes)))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::PG_LSN
    }
}

impl tokio_postgres::types::ToSql for Lsn {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        out.extend_from_slice(&self.0.to_be_bytes());
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::PG_LSN
    }

    tokio_postgres::types::to_sql_checked!();
}

impl serde::Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A TOASTed value the change left as it was: its bytes are not in the stream, and
    /// the target's value must be kept.
    Unchanged,
    Text(String),
}

/// A column of a relation as the stream describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelColumn {
    /// Part of the replica identity (the key a change's old row is given by).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// A table's shape, sent before its first change in a decoding session and again after
/// it changes (ALTER TABLE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    /// `d`efault (primary key), `n`othing, `f`ull, `i`ndex.
    pub replica_identity: u8,
    pub columns: Vec<RelColumn>,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Begin {
        /// The LSN of the transaction's commit record.
        final_lsn: Lsn,
        /// Microseconds since 2000-01-01 (PostgreSQL's epoch).
        commit_time: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: Lsn,
        /// Just past the commit record: where the next transaction starts.
        end_lsn: Lsn,
        commit_time: i64,
    },
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Value>,
    },
    Update {
        relation: u32,
        /// The old key (`K`) or whole old row (`O`, replica identity full); absent when
        /// the key did not change.
        old: Option<Vec<Value>>,
        new: Vec<Value>,
    },
    Delete {
        relation: u32,
        old: Vec<Value>,
    },
    Truncate {
        relations: Vec<u32>,
        cascade: bool,
        restart_identity: bool,
    },
    Other,
}

/// A message that cannot be read: a bug here or a server speaking another protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot decode a pgoutput message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Reads big-endian fields from a message.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError(format!(
                "message ends early ({} bytes left, {n} wanted)",
                self.buf.len()
            )));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn lsn(&mut self) -> Result<Lsn, DecodeError> {
        Ok(Lsn(self.u64()?))
    }

    /// A NUL-terminated string.
    fn cstr(&mut self) -> Result<String, DecodeError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| DecodeError("unterminated string".into()))?;
        let s = text(self.take(end)?)?;
        self.take(1)?;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Vec<Value>, DecodeError> {
        let n = self.u16()?;
        (0..n)
            .map(|_| match self.u8()? {
                b'n' => Ok(Value::Null),
                b'u' => Ok(Value::Unchanged),
                b't' => {
                    let len = self.u32()? as usize;
                    Ok(Value::Text(text(self.take(len)?)?))
                }
                other => Err(DecodeError(format!(
                    "column value of kind {:?} (binary values are not asked for)",
                    other as char
                ))),
            })
            .collect()
    }
}

fn text(bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("text that is not UTF-8".into()))
}

/// Decodes one message.
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf };
    Ok(match r.u8()? {
        b'B' => Message::Begin {
            final_lsn: r.lsn()?,
            commit_time: r.i64()?,
            xid: r.u32()?,
        },
        b'C' => {
            let _flags = r.u8()?;
            Message::Commit {
                commit_lsn: r.lsn()?,
                end_lsn: r.lsn()?,
                commit_time: r.i64()?,
            }
        }
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstr()?;
            let name = r.cstr()?;
            let replica_identity = r.u8()?;
            let n = r.u16()?;
            let columns = (0..n)
                .map(|_| {
                    Ok(RelColumn {
                        key: r.u8()? & 1 == 1,
                        name: r.cstr()?,
                        type_oid: r.u32()?,
                        type_modifier: r.i32()?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?;
            Message::Relation(Relation {
                id,
                schema,
                name,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            expect(r.u8()?, b'N')?;
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let (old, new) = match r.u8()? {
                b'K' | b'O' => {
                    let old = r.tuple()?;
                    expect(r.u8()?, b'N')?;
                    (Some(old), r.tuple()?)
                }
                b'N' => (None, r.tuple()?),
                other => return Err(DecodeError(format!("update tuple tag {:?}", other as char))),
            };
            Message::Update { relation, old, new }
        }
        b'D' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => {}
                other => return Err(DecodeError(format!("delete tuple tag {:?}", other as char))),
            }
            Message::Delete {
                relation,
                old: r.tuple()?,
            }
        }
        b'T' => {
            let n = r.u32()?;
            let options = r.u8()?;
            let relations = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
            Message::Truncate {
                relations,
                cascade: options & 1 == 1,
                restart_identity: options & 2 == 2,
            }
        }
        _ => Message::Other,
    })
}

fn expect(got: u8, want: u8) -> Result<(), DecodeError> {
    if got == want {
        Ok(())
    } else {
        Err(DecodeError(format!(
            "tuple tag {:?} where {:?} belongs",
            got as char, want as char
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(values: &[Option<&str>]) -> Vec<u8> {
        let mut out = (values.len() as u16).to_be_bytes().to_vec();
        for v in values {
            match v {
                None => out.push(b'n'),
                Some("\u{0}unchanged") => out.push(b'u'),
                Some(s) => {
                    out.push(b't');
                    out.extend((s.len() as u32).to_be_bytes());
                    out.extend(s.as_bytes());
                }
            }
        }
        out
    }

    #[test]
    fn lsn_round_trips_through_text() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("nonsense".parse::<Lsn>().is_err());
    }

    #[test]
    fn decodes_begin_commit_and_relation() {
        let mut begin = vec![b'B'];
        begin.extend(0x10u64.to_be_bytes());
        begin.extend(7i64.to_be_bytes());
        begin.extend(42u32.to_be_bytes());
        assert_eq!(
            decode(&begin).unwrap(),
            Message::Begin {
                final_lsn: Lsn(0x10),
                commit_time: 7,
                xid: 42
            }
        );
        let mut rel = vec![b'R'];
        rel.extend(16384u32.to_be_bytes());
        rel.extend(b"public\0a \"t\"\0f");
        rel.extend(1u16.to_be_bytes());
        rel.push(1);
        rel.extend(b"id\0");
        rel.extend(23u32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        let Message::Relation(r) = decode(&rel).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!((r.schema.as_str(), r.name.as_str()), ("public", "a \"t\""));
        assert_eq!(r.replica_identity, b'f');
        assert_eq!(r.columns[0].name, "id");
        assert!(r.columns[0].key);
    }

    #[test]
    fn decodes_tuples_with_null_and_unchanged_toast() {
        let mut update = vec![b'U'];
        update.extend(5u32.to_be_bytes());
        update.push(b'N');
        update.extend(tuple(&[Some("1"), None, Some("\u{0}unchanged")]));
        assert_eq!(
            decode(&update).unwrap(),
            Message::Update {
                relation: 5,
                old: None,
                new: vec![Value::Text("1".into()), Value::Null, Value::Unchanged]
            }
        );
        let mut delete = vec![b'D'];
        delete.extend(5u32.to_be_bytes());
        delete.push(b'K');
        delete.extend(tuple(&[Some("é")]));
        assert_eq!(
            decode(&delete).unwrap(),
            Message::Delete {
                relation: 5,
                old: vec![Value::Text("é".into())]
            }
        );
        // Truncated input is an error, not a panic.
        assert!(decode(&delete[..delete.len() - 1]).is_err());
    }
}
