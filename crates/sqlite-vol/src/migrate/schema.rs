//! A database's schema in a normal form, and the difference between two of them.
//!
//! Each table, index, view and trigger becomes a set of named facts: a table's columns (position, type,
//! `NOT NULL`, default, collation), its primary key, unique constraints, foreign keys, `CHECK` clauses and
//! options (`STRICT`, `WITHOUT ROWID`); an index, view or trigger its definition with comments, layout,
//! quoting and case folded away. Facts come from SQLite's own pragmas where it has them, so two schemas
//! written differently (`CREATE TABLE IF NOT EXISTS "Users"(...)` by a script, `CREATE TABLE users (...)` by a
//! migration) compare equal when they are the same. The toolkit's own tables (`_sqlite_vol_*`), refinery's
//! history, Litestream's `_litestream_*` tables and SQLite's internal ones are left out.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::sqltext::{normalised, tokens, Token};
use super::HISTORY_TABLE;

/// A schema in normal form: object (`table users`) → fact (`column email`) → value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    objects: BTreeMap<String, BTreeMap<String, String>>,
}

/// One difference between two schemas.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The object, e.g. `table users` or `index users_email`.
    pub object: String,
    /// The fact that differs (`column email`), or `None` when the whole object is on one side only.
    pub fact: Option<String>,
    /// The value on the first side (the database as it is, or before migrating), if there.
    pub before: Option<String>,
    /// The value on the second side (what the migrations make, or after migrating), if there.
    pub after: Option<String>,
}

impl std::fmt::Display for Change {
    /// `+ index users_email: …`, `- table legacy`, `~ table users, column age: TEXT -> INTEGER`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.fact {
            Some(fact) => format!("{}, {fact}", self.object),
            None => self.object.clone(),
        };
        match (&self.before, &self.after) {
            (None, Some(a)) => write!(f, "+ {what}: {a}"),
            (Some(b), None) => write!(f, "- {what}: {b}"),
            (Some(b), Some(a)) => write!(f, "~ {what}: {b} -> {a}"),
            (None, None) => write!(f, "  {what}"),
        }
    }
}

/// Whether a table or object name is left out of schema comparisons.
pub(crate) fn ignored(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("sqlite_")
        || n.starts_with("_sqlite_vol_")
        || n.starts_with("_litestream_")
        || n == HISTORY_TABLE
}

impl Schema {
    /// Reads the schema of `conn`'s main database. Changes nothing.
    ///
    /// # Errors
    /// A SQLite error when the schema cannot be read.
    pub fn read(conn: &Connection) -> rusqlite::Result<Schema> {
        let mut stmt = conn.prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_master \
             WHERE type IN ('table', 'index', 'view', 'trigger') ORDER BY type, name",
        )?;
        let rows: Vec<(String, String, String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut objects = BTreeMap::new();
        for (kind, name, table, sql) in rows {
            let Some(sql) = sql else { continue }; // automatic indexes: read with their table
            if ignored(&name) || ignored(&table) {
                continue;
            }
            let key = format!("{kind} {}", name.to_lowercase());
            let facts = if kind == "table" && !normalised(&sql).starts_with("create virtual") {
                table_facts(conn, &name, &sql)?
            } else {
                BTreeMap::from([("definition".to_string(), normalised(&sql))])
            };
            objects.insert(key, facts);
        }
        Ok(Schema { objects })
    }

    /// Whether there is nothing in it (besides what is left out).
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The names of the objects, e.g. `table users`.
    pub fn objects(&self) -> impl Iterator<Item = &str> {
        self.objects.keys().map(String::as_str)
    }

    /// What differs from `self` (before) to `after`, objects in name order.
    pub fn diff(&self, after: &Schema) -> Vec<Change> {
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.objects.keys().chain(after.objects.keys()).collect();
        for name in names {
            match (self.objects.get(name), after.objects.get(name)) {
                (Some(b), None) => out.push(whole(name, Some(summary(b)), None)),
                (None, Some(a)) => out.push(whole(name, None, Some(summary(a)))),
                (Some(b), Some(a)) => {
                    let facts: std::collections::BTreeSet<&String> =
                        b.keys().chain(a.keys()).collect();
                    for fact in facts {
                        let (x, y) = (b.get(fact), a.get(fact));
                        if x != y {
                            out.push(Change {
                                object: name.clone(),
                                fact: Some(fact.clone()),
                                before: x.cloned(),
                                after: y.cloned(),
                            });
                        }
                    }
                }
                (None, None) => {}
            }
        }
        out
    }
}

fn whole(name: &str, before: Option<String>, after: Option<String>) -> Change {
    Change {
        object: name.into(),
        fact: None,
        before,
        after,
    }
}

/// An object in one line: a table's columns, or a definition.
fn summary(facts: &BTreeMap<String, String>) -> String {
    if let Some(d) = facts.get("definition") {
        return d.clone();
    }
    let cols: Vec<&str> = facts
        .keys()
        .filter_map(|k| k.strip_prefix("column "))
        .collect();
    format!("columns {}", cols.join(", "))
}

/// A row of `pragma_table_xinfo`.
struct Column {
    name: String,
    ty: String,
    notnull: bool,
    default: Option<String>,
    pk: i64,
    hidden: i64,
}

/// The facts of one ordinary table.
fn table_facts(
    conn: &Connection,
    name: &str,
    sql: &str,
) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut facts = BTreeMap::new();
    let (collations, checks) = from_text(sql);
    let mut stmt = conn.prepare(
        "SELECT cid, name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid",
    )?;
    let cols: Vec<Column> = stmt
        .query_map([name], |r| {
            Ok(Column {
                name: r.get(1)?,
                ty: r.get(2)?,
                notnull: r.get(3)?,
                default: r.get(4)?,
                pk: r.get(5)?,
                hidden: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut pk: Vec<(i64, String)> = Vec::new();
    for (pos, c) in cols.into_iter().enumerate() {
        let lname = c.name.to_lowercase();
        let ty =
            c.ty.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase();
        let mut v = format!(
            "#{} {}",
            pos + 1,
            if ty.is_empty() { "(no type)" } else { &ty }
        );
        if c.notnull {
            v.push_str(" NOT NULL");
        }
        if let Some(d) = c.default {
            v.push_str(&format!(" DEFAULT {}", normalised(&d)));
        }
        if let Some(coll) = collations.get(&lname) {
            v.push_str(&format!(" COLLATE {coll}"));
        }
        if c.hidden == 2 || c.hidden == 3 {
            v.push_str(" GENERATED");
        }
        if c.pk > 0 {
            pk.push((c.pk, lname.clone()));
        }
        facts.insert(format!("column {lname}"), v);
    }
    pk.sort();
    if !pk.is_empty() {
        let cols: Vec<String> = pk.into_iter().map(|(_, c)| c).collect();
        facts.insert("primary key".into(), format!("({})", cols.join(", ")));
    }
    let mut stmt =
        conn.prepare("SELECT name, origin FROM pragma_index_list(?1) WHERE origin = 'u'")?;
    let uniques: Vec<String> = stmt
        .query_map([name], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for index in uniques {
        let mut s = conn.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
        let cols: Vec<String> = s
            .query_map([&index], |r| r.get::<_, Option<String>>(0))?
            .map(|c| c.map(|c| c.unwrap_or_else(|| "<expr>".into()).to_lowercase()))
            .collect::<rusqlite::Result<_>>()?;
        facts.insert(format!("unique ({})", cols.join(", ")), "UNIQUE".into());
    }
    let mut stmt = conn.prepare(
        "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) \
         ORDER BY id, seq",
    )?;
    let fks: Vec<(i64, String, String, Option<String>, String, String)> = stmt
        .query_map([name], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut grouped: BTreeMap<i64, (Vec<String>, String, Vec<String>, String)> = BTreeMap::new();
    for (id, to_table, from, to, on_update, on_delete) in fks {
        let e = grouped.entry(id).or_insert_with(|| {
            let actions = format!("ON UPDATE {on_update} ON DELETE {on_delete}");
            (Vec::new(), to_table.to_lowercase(), Vec::new(), actions)
        });
        e.0.push(from.to_lowercase());
        e.2.push(to.unwrap_or_default().to_lowercase());
    }
    for (from, to_table, to, actions) in grouped.into_values() {
        facts.insert(
            format!("foreign key ({})", from.join(", ")),
            format!("REFERENCES {to_table} ({}) {actions}", to.join(", ")),
        );
    }
    if !checks.is_empty() {
        facts.insert("checks".into(), checks.join("; "));
    }
    let options: Option<(bool, bool)> = conn
        .query_row(
            "SELECT wr, strict FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    let (wr, strict) = options.unwrap_or_default();
    let mut opts = Vec::new();
    if strict {
        opts.push("STRICT");
    }
    if wr {
        opts.push("WITHOUT ROWID");
    }
    facts.insert(
        "options".into(),
        if opts.is_empty() {
            "none".into()
        } else {
            opts.join(", ")
        },
    );
    Ok(facts)
}

/// From a `CREATE TABLE` text: each column's collation (upper case) and the `CHECK` clauses (normalised,
/// sorted), which SQLite's pragmas do not report.
fn from_text(sql: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let toks = tokens(sql);
    let mut collations = BTreeMap::new();
    let mut checks = Vec::new();
    let Some(open) = toks.iter().position(|t| *t == Token::Punct("(".into())) else {
        return (collations, checks);
    };
    // Split the definitions at top-level commas.
    let mut items: Vec<Vec<&Token>> = vec![Vec::new()];
    let mut depth = 0;
    for t in &toks[open + 1..] {
        match t {
            Token::Punct(p) if p == "(" => depth += 1,
            Token::Punct(p) if p == ")" && depth == 0 => break,
            Token::Punct(p) if p == ")" => depth -= 1,
            Token::Punct(p) if p == "," && depth == 0 => {
                items.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = items.last_mut() {
            last.push(t);
        }
    }
    for item in items.iter().filter(|i| !i.is_empty()) {
        let constraint = ["constraint", "primary", "unique", "check", "foreign"]
            .iter()
            .any(|k| item[0].is(k));
        let column = (!constraint).then(|| item[0].folded());
        let mut i = 0;
        while i < item.len() {
            if item[i].is("collate") && i + 1 < item.len() {
                if let Some(c) = &column {
                    collations.insert(c.clone(), item[i + 1].folded().to_uppercase());
                }
            }
            if item[i].is("check") {
                let mut depth = 0;
                let mut expr = Vec::new();
                for t in &item[i + 1..] {
                    match t {
                        Token::Punct(p) if p == "(" => depth += 1,
                        Token::Punct(p) if p == ")" => depth -= 1,
                        _ => {}
                    }
                    expr.push(t.folded());
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                checks.push(format!("CHECK {}", expr.join(" ")));
            }
            i += 1;
        }
    }
    checks.sort();
    (collations, checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(sql: &str) -> Schema {
        let c = Connection::open_in_memory().expect("memory");
        c.execute_batch(sql).expect("schema");
        Schema::read(&c).expect("read")
    }

    #[test]
    fn layout_quoting_and_if_not_exists_do_not_count() {
        let a = schema("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL COLLATE NOCASE UNIQUE, \
                        n INT CHECK (n > 0)); CREATE INDEX users_n ON users (n);");
        let b = schema("CREATE TABLE IF NOT EXISTS \"users\"(\n id integer primary key,\n email text unique \
                        not null collate nocase, -- mail\n n int check(n>0));\n create index if not exists users_n on users(n);");
        assert_eq!(a.diff(&b), Vec::new());
    }

    #[test]
    fn types_indexes_collations_and_checks_count() {
        let a = schema("CREATE TABLE t (a INTEGER, b TEXT COLLATE NOCASE CHECK (b <> ''));");
        let b = schema("CREATE TABLE t (a TEXT, b TEXT); CREATE INDEX t_a ON t (a); CREATE TABLE _sqlite_vol_x (y);");
        let changes: Vec<String> = a.diff(&b).iter().map(ToString::to_string).collect();
        assert_eq!(
            changes,
            vec![
                "+ index t_a: create index t_a on t ( a )",
                "- table t, checks: CHECK ( b <> '' )",
                "~ table t, column a: #1 INTEGER -> #1 TEXT",
                "~ table t, column b: #2 TEXT COLLATE NOCASE -> #2 TEXT",
            ]
        );
    }
}
