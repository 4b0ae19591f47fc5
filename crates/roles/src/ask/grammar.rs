//! The GBNF grammar `ask` decodes SQL with, generated from the live schema: a single `SELECT`
//! (joins, subqueries, grouping, ordering, a limit) whose tables, columns and functions are
//! only the ones that exist, in the one spacing the worked examples use.

use std::collections::BTreeSet;

use super::Schema;

/// Functions the grammar lets a query call (DataFusion names; aggregates and scalars).
pub const FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "round",
    "abs",
    "coalesce",
    "lower",
    "upper",
    "length",
    "date_trunc",
    "to_char",
    "now",
    "approx_median",
    "stddev",
];

/// SQL types a `CAST` may name.
const TYPES: &[&str] = &["VARCHAR", "BIGINT", "DOUBLE", "DATE", "DECIMAL(38, 9)"];

/// An identifier the SQL must quote (a keyword used as a column name).
fn needs_quotes(name: &str) -> bool {
    matches!(
        name,
        "from" | "to" | "order" | "group" | "select" | "where" | "limit" | "user" | "end"
    ) || !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// How a column is written in SQL: quoted when it is a keyword.
pub fn sql_ident(name: &str) -> String {
    if needs_quotes(name) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// A GBNF string literal of `text`.
fn lit(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Alternatives of literals, longest first (so that a prefix does not shadow a longer name).
fn alternatives<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut items: Vec<&str> = items
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    items.sort_by_key(|s| std::cmp::Reverse(s.len()));
    items.into_iter().map(lit).collect::<Vec<_>>().join(" | ")
}

/// The grammar for `schema` (root rule `root`).
pub fn sql_grammar(schema: &Schema) -> String {
    let tables = alternatives(schema.tables.iter().map(|t| t.name.as_str()));
    let column_names: Vec<String> = schema
        .tables
        .iter()
        .flat_map(|t| t.columns.iter().map(|c| sql_ident(&c.name)))
        .collect();
    let columns = alternatives(column_names.iter().map(String::as_str));
    let functions = alternatives(FUNCTIONS.iter().copied());
    let types = alternatives(TYPES.iter().copied());
    format!(
        r#"root ::= " " query "\n"
query ::= "SELECT " ("DISTINCT ")? items " FROM " source where? group? having? order? limit?
items ::= item (", " item)*
item ::= "*" | expr (" AS " ident)?
source ::= tref join*
tref ::= table (" " ident)? | "(" query ") " ident
join ::= " " ("LEFT ")? "JOIN " tref " ON " expr
where ::= " WHERE " expr
group ::= " GROUP BY " expr (", " expr)*
having ::= " HAVING " expr
order ::= " ORDER BY " oitem (", " oitem)*
oitem ::= (expr | ident) (" DESC" | " ASC")?
limit ::= " LIMIT " [1-9] [0-9]{{0,4}}
expr ::= unary (binop unary)*
unary ::= ("NOT " | "-")? atom postfix?
postfix ::= " IS NULL" | " IS NOT NULL" | " BETWEEN " atom " AND " atom | (" NOT")? " IN (" (query | expr (", " expr)*) ")" | (" NOT")? " LIKE " string
binop ::= " = " | " <> " | " < " | " <= " | " > " | " >= " | " + " | " - " | " * " | " / " | " AND " | " OR "
atom ::= column | number | string | call | "(" query ")" | "(" expr ")" | case | "NULL" | "TRUE" | "FALSE" | interval | "CAST(" expr " AS " type ")" | "current_date"
call ::= function "(" ("*" | "DISTINCT " expr | expr (", " expr)*)? ")"
case ::= "CASE" (" WHEN " expr " THEN " expr)+ (" ELSE " expr)? " END"
interval ::= "INTERVAL '" [1-9] [0-9]{{0,3}} " " ("days" | "day" | "hours" | "hour" | "minutes" | "minute" | "seconds" | "second") "'"
column ::= (ident ".")? colname
colname ::= {columns}
table ::= {tables}
function ::= {functions}
type ::= {types}
ident ::= [a-z] [a-z0-9_]{{0,15}}
number ::= [0-9]{{1,20}} ("." [0-9]{{1,9}})?
string ::= "'" [^'\n\\]{{0,80}} "'"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ask::{Column, Table};

    #[test]
    fn keywords_used_as_columns_are_quoted_and_the_rest_are_not() {
        assert_eq!(sql_ident("from"), "\"from\"");
        assert_eq!(sql_ident("amount_hib"), "amount_hib");
        assert_eq!(sql_ident("Weird Name"), "\"Weird Name\"");
    }

    #[test]
    fn the_grammar_names_only_the_schema_s_tables_and_columns() {
        let schema = Schema {
            tables: vec![Table {
                name: "transfers".into(),
                about: String::new(),
                columns: vec![
                    Column {
                        name: "from".into(),
                        data_type: "Utf8".into(),
                        samples: vec![],
                    },
                    Column {
                        name: "amount_hib".into(),
                        data_type: "Decimal128(38, 9)".into(),
                        samples: vec![],
                    },
                ],
            }],
            names: vec![],
        };
        let g = sql_grammar(&schema);
        assert!(g.contains(r#"table ::= "transfers""#), "{g}");
        assert!(
            g.contains(r#"colname ::= "amount_hib" | "\"from\"""#),
            "{g}"
        );
        assert!(!g.contains("blocks"));
    }
}
