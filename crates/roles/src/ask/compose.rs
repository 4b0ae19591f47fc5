//! Queries composed from a question's words and the event tables, without the model: one
//! event the question singles out, a net flow, two accounts compared. Each returns `None`
//! unless the words fit its shape; [`super::Asker::ask`] runs what they return first.

use super::{
    AMOUNT_WORDS, ONE_NAME_PER_ADDRESS, Party, RECEIVING, SENDING, TIME_WORDS, asks_count, parties,
    party_clause, sizes, spaced, verb_party,
};

/// An event table a question may single out one row of: the nouns that name one of its rows,
/// the columns that row is shown with (`t` the table, `n` the party's name), the party a named
/// account plays, the column its size is read from, and the keys after the height.
struct RowTable {
    table: &'static str,
    nouns: &'static [&'static str],
    plural: &'static [&'static str],
    columns: &'static str,
    party: &'static str,
    size: Option<&'static str>,
    index: &'static str,
}

/// The event tables [`one_row`] knows. Transfers name both parties (see [`one_row`]).
const ROW_TABLES: &[RowTable] = &[
    RowTable {
        table: "transfers",
        nouns: &["transfer", "payment"],
        plural: &["transfers", "payments"],
        columns: "t.height, t.time, s.name AS sender, t.\"from\", r.name AS recipient, t.\"to\", t.amount_hib",
        party: "\"from\"",
        size: Some("amount_hib"),
        index: "event_index",
    },
    RowTable {
        table: "transactions",
        nouns: &["transaction", "tx"],
        plural: &["transactions", "txs"],
        columns: "t.height, t.time, t.tx_hash, n.name AS sender_name, t.sender, t.fee_hib, t.success, t.message_types",
        party: "sender",
        size: None,
        index: "tx_index",
    },
    RowTable {
        table: "stakes",
        nouns: &["bond", "unbond", "unbonding", "delegation"],
        plural: &["bonds", "unbonds", "delegations", "stakes"],
        columns: "t.height, t.time, t.kind, n.name AS delegator_name, t.delegator, t.validator, t.amount_hib, t.release_height",
        party: "delegator",
        size: Some("amount_hib"),
        index: "event_index",
    },
];

/// The SQL of a question about one event it singles out (`the biggest transfer`, `dave's first
/// incoming transfer`, `the most recent transaction`, `when did bob unbond`): that row of its
/// table with every column a person may mean (height, time, parties by name and address,
/// amount), filtered on the accounts the question names. A transfer's sender and recipient are
/// placed by the words (`from`, `to`, `sent`, `got`); a transaction's account is its sender, a
/// stake's its delegator. Without a word of size or order, only a named account's bonds or
/// unbonds are listed (`when did bob unbond`). None where the question asks anything else (a
/// count, a total, each sender, several), states a number or a time, names someone it cannot
/// place, or names more than one table's rows.
pub(super) fn one_row(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question).replace(" most recent ", " latest ");
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    let mut tables = ROW_TABLES
        .iter()
        .filter(|t| has(t.nouns) || (t.table == "stakes" && has(&["unbonded", "bonded"])));
    let table = tables.next()?;
    if tables.next().is_some()
        || ROW_TABLES.iter().any(|t| has(t.plural))
        || has(&[
            "each",
            "every",
            "per",
            "total",
            "average",
            "mean",
            "sum",
            "all",
            "rank",
            "ranked",
            "list",
            "between",
            "than",
            "percentage",
            "percent",
            "share",
            "everyone",
        ])
        || asks_count(question)
        || has(TIME_WORDS)
        || q.split_whitespace()
            .any(|w| w.trim_end_matches('%').parse::<f64>().is_ok())
    {
        return None;
    }
    let (largest, smallest) = sizes(&q);
    let latest = has(&["latest", "last", "newest"]);
    let first = has(&["first", "earliest", "oldest"]);
    let index = table.index;
    let by_size = |dir: &str| {
        table
            .size
            .map(|c| format!("t.{c}{dir}, t.height, t.{index}"))
    };
    let mentioned = mentioned_names(question, names);
    let (order, limit) = match (largest, smallest, latest, first) {
        (true, false, false, false) => (by_size(" DESC")?, " LIMIT 1"),
        (false, true, false, false) => (by_size("")?, " LIMIT 1"),
        (false, false, true, false) => (format!("t.height DESC, t.{index} DESC"), " LIMIT 1"),
        (false, false, false, true) => (format!("t.height, t.{index}"), " LIMIT 1"),
        // A named account's bonds or unbonds, every one of them.
        (false, false, false, false) if table.table == "stakes" && mentioned.len() == 1 => {
            (format!("t.height, t.{index}"), "")
        }
        _ => return None,
    };
    let mut filters: Vec<String> = Vec::new();
    if table.table == "transfers" {
        // Every name the question mentions must be placed as a sender or a recipient.
        let placed = parties(question, names);
        if mentioned
            .iter()
            .any(|n| !placed.iter().any(|(p, _)| p.eq_ignore_ascii_case(n)))
        {
            return None;
        }
        filters.extend(
            placed
                .iter()
                .map(|(name, party)| party_clause(&format!("t.{}", party.columns().0), name)),
        );
    } else {
        match mentioned.as_slice() {
            [] => {}
            [one] => filters.push(party_clause(&format!("t.{}", table.party), one)),
            _ => return None,
        }
    }
    if table.table == "stakes" {
        let kind = if has(&["unbond", "unbonding", "unbonded", "unbonds"]) {
            Some("unbond")
        } else if has(&["bond", "bonded", "bonds"]) {
            Some("bond")
        } else {
            None
        };
        filters.extend(kind.map(|k| format!("t.kind = '{k}'")));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    let joins = if table.table == "transfers" {
        format!(
            "LEFT JOIN {ONE_NAME_PER_ADDRESS} s ON s.address = t.\"from\" LEFT JOIN {ONE_NAME_PER_ADDRESS} r ON r.address = t.\"to\""
        )
    } else {
        format!(
            "LEFT JOIN {ONE_NAME_PER_ADDRESS} n ON n.address = t.{}",
            table.party
        )
    };
    Some(format!(
        "SELECT {} FROM {} t {joins}{filter} ORDER BY {order}{limit}",
        table.columns, table.table
    ))
}

/// The names of `names` a question mentions, in the order it mentions them, each once.
fn mentioned_names(question: &str, names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lower = question.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, word) in words.iter().enumerate() {
        // `the validator`, `a validator`: a noun, whatever a label calls an account.
        let article = i > 0 && ["the", "a", "an", "any", "each", "every"].contains(&words[i - 1]);
        if !article
            && let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(word))
            && !out.contains(name)
        {
            out.push(name.clone());
        }
    }
    out
}

/// Whether the question is about transfers and not stakes, by its words.
fn about_transfers(q: &str) -> bool {
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    !has(&[
        "stake",
        "staked",
        "stakes",
        "bond",
        "bonded",
        "unbond",
        "unbonded",
        "delegated",
        "delegation",
        "fee",
        "fees",
        "balance",
    ])
}

/// The sum of transfers from the accounts named `from` to those named `to` (either may be
/// absent), as a scalar subquery.
fn flow(from: Option<&str>, to: Option<&str>) -> String {
    let mut terms = Vec::new();
    if let Some(name) = from {
        terms.push(party_clause("\"from\"", name));
    }
    if let Some(name) = to {
        terms.push(party_clause("\"to\"", name));
    }
    format!(
        "(SELECT coalesce(sum(amount_hib), 0) FROM transfers WHERE {})",
        terms.join(" AND ")
    )
}

/// The SQL of a question about a net flow of transfers: one account's (`bob's net flow`, `how
/// much more did alice send than she received`: what the words name first minus the other,
/// received minus sent where only `net` is said), or between two (`how much more did alice send
/// to bob than bob sent back`; `compared to` shows both flows instead of their difference).
/// None for anything else, and for a question that states a number (`more than 5`).
pub(super) fn net_flow(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question).replace('-', " ");
    let words: Vec<&str> = q.split_whitespace().collect();
    if words.iter().any(|w| w.parse::<f64>().is_ok()) || !about_transfers(&q) {
        return None;
    }
    let has = |list: &[&str]| list.iter().any(|w| words.contains(w));
    let more_than = words
        .iter()
        .position(|w| *w == "more")
        .is_some_and(|at| words[at..].contains(&"than"));
    let compared =
        q.contains(" compared to ") || q.contains(" compared with ") || has(&["versus", "vs"]);
    if !(has(&["net"]) || more_than || compared) {
        return None;
    }
    // The first verb of sending or receiving after the comparison word decides the minuend.
    let start = words
        .iter()
        .position(|w| ["net", "more", "compared"].contains(w))
        .unwrap_or(0);
    let sends_first = words[start..]
        .iter()
        .chain(words[..start].iter().rev())
        .find_map(|w| {
            if SENDING.contains(w) {
                Some(true)
            } else if RECEIVING.contains(w) {
                Some(false)
            } else {
                None
            }
        });
    let sql = match mentioned_names(question, names).as_slice() {
        [one] => {
            let sent = flow(Some(one), None);
            let received = flow(None, Some(one));
            if compared {
                return None;
            } else if more_than && sends_first == Some(true) {
                format!("SELECT {sent} - {received} AS net_hib")
            } else {
                format!("SELECT {received} - {sent} AS net_hib")
            }
        }
        // Between two, only where the words give a direction (`to bob`, `sent back`): `did
        // alice send more than bob` compares two totals instead.
        [a, b]
            if q.contains(" back ")
                || ["to", "from", "send", "sent", "paid", "pay"]
                    .iter()
                    .any(|w| q.contains(&format!(" {w} {b} "))) =>
        {
            // `Alice sent to bob`, `alice received from bob`: the first-named party's side.
            let (first, second) = match sends_first {
                Some(false) => (flow(Some(b), Some(a)), flow(Some(a), Some(b))),
                _ => (flow(Some(a), Some(b)), flow(Some(b), Some(a))),
            };
            if compared {
                let (x, y) = match sends_first {
                    Some(false) => ((b, a), (a, b)),
                    _ => ((a, b), (b, a)),
                };
                // Quoted: a name is a word of letters, digits and `_`, and may start with a digit.
                format!(
                    "SELECT {first} AS \"{}_to_{}_hib\", {second} AS \"{}_to_{}_hib\"",
                    x.0, x.1, y.0, y.1
                )
            } else if more_than || has(&["net"]) {
                format!("SELECT {first} - {second} AS net_hib")
            } else {
                return None;
            }
        }
        _ => return None,
    };
    Some(sql)
}

/// The SQL of a question comparing what two named accounts sent or received (`between bob and
/// carol, who has sent more HIB`; `did bob send more HIB to alice or to carol`): the two
/// grouped by name, largest first, filtered on a third name's part where one is given; the
/// winner alone unless the words ask for each. None for anything else.
pub(super) fn two_compared(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question);
    let words: Vec<&str> = q.split_whitespace().collect();
    if words.iter().any(|w| w.parse::<f64>().is_ok())
        || !about_transfers(&q)
        || !words.contains(&"more")
        || words.contains(&"than")
        || net_flow(question, names).is_some()
    {
        return None;
    }
    let placed = parties(question, names);
    let mentioned = mentioned_names(question, names);
    let verb = words.iter().find_map(|w| verb_party(w));
    let part_of = |name: &str| {
        placed
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    };
    // The two compared share a part; a third name, if any, plays the other.
    let (compared, other): (Vec<&String>, Vec<&String>) = match mentioned.len() {
        2 => (mentioned.iter().collect(), Vec::new()),
        3 => {
            let parts: Vec<Option<Party>> = mentioned.iter().map(|n| part_of(n)).collect();
            let recipients: Vec<&String> = mentioned
                .iter()
                .zip(&parts)
                .filter(|(_, p)| **p == Some(Party::Recipient))
                .map(|(n, _)| n)
                .collect();
            let senders: Vec<&String> = mentioned
                .iter()
                .zip(&parts)
                .filter(|(_, p)| **p == Some(Party::Sender))
                .map(|(n, _)| n)
                .collect();
            match (senders.len(), recipients.len()) {
                (1, 2) => (recipients, senders),
                (2, 1) => (senders, recipients),
                _ => return None,
            }
        }
        _ => return None,
    };
    let part = match other.first() {
        Some(o) => match part_of(o)? {
            Party::Sender => Party::Recipient,
            Party::Recipient => Party::Sender,
        },
        None => {
            let parts: Vec<Option<Party>> = compared.iter().map(|n| part_of(n)).collect();
            match (parts[0], parts[1]) {
                (Some(a), Some(b)) if a == b => a,
                (Some(_), Some(_)) => return None,
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => verb?,
            }
        }
    };
    let (column, other_column) = part.columns();
    let counting = asks_count(question)
        || (words.contains(&"transfers")
            && !words.iter().any(|w| AMOUNT_WORDS.contains(w))
            && !q.contains(" how much "));
    let (measure, alias) = match (counting, part) {
        (true, _) => ("count(*)", "transfers"),
        (false, Party::Sender) => ("sum(t.amount_hib)", "sent_hib"),
        (false, Party::Recipient) => ("sum(t.amount_hib)", "received_hib"),
    };
    let listed: Vec<String> = compared
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect();
    let mut filter = format!("l.name IN ({})", listed.join(", "));
    if let Some(o) = other.first() {
        filter.push_str(&format!(
            " AND {}",
            party_clause(&format!("t.{other_column}"), o)
        ));
    }
    let each = ["each", "both", "respectively", "every"]
        .iter()
        .any(|w| words.contains(w));
    let limit = if each { "" } else { " LIMIT 1" };
    Some(format!(
        "SELECT l.name, {measure} AS {alias} FROM transfers t JOIN labels l ON l.address = t.{column} WHERE {filter} GROUP BY l.name ORDER BY {alias} DESC{limit}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_net_flows_and_two_compared() {
        let names: Vec<String> = ["alice", "bob", "carol", "dave"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let row = "SELECT t.height, t.time, s.name AS sender, t.\"from\", r.name AS recipient, t.\"to\", t.amount_hib FROM transfers t LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) s ON s.address = t.\"from\" LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) r ON r.address = t.\"to\"";
        assert_eq!(
            one_row(
                "Who sent the single biggest transfer, to whom, and how much HIB was it?",
                &names
            ),
            Some(format!(
                "{row} ORDER BY t.amount_hib DESC, t.height, t.event_index LIMIT 1"
            ))
        );
        assert_eq!(
            one_row("when did dave get his first transfer?", &names),
            Some(format!(
                "{row} WHERE t.\"to\" IN (SELECT address FROM labels WHERE name = 'dave') ORDER BY t.height, t.event_index LIMIT 1"
            ))
        );
        assert_eq!(
            one_row("What was the most recent transfer on the chain?", &names),
            Some(format!(
                "{row} ORDER BY t.height DESC, t.event_index DESC LIMIT 1"
            ))
        );
        // A transaction's row, a named account's unbonds.
        let tx_row = "SELECT t.height, t.time, t.tx_hash, n.name AS sender_name, t.sender, t.fee_hib, t.success, t.message_types FROM transactions t LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = t.sender";
        assert_eq!(
            one_row(
                "What was the most recent transaction — its hash, block height, and who sent it?",
                &names
            ),
            Some(format!(
                "{tx_row} ORDER BY t.height DESC, t.tx_index DESC LIMIT 1"
            ))
        );
        let stake_row = "SELECT t.height, t.time, t.kind, n.name AS delegator_name, t.delegator, t.validator, t.amount_hib, t.release_height FROM stakes t LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = t.delegator";
        assert_eq!(
            one_row(
                "When did bob unbond, how much HIB was it, and at what height does it get released?",
                &names
            ),
            Some(format!(
                "{stake_row} WHERE t.delegator IN (SELECT address FROM labels WHERE name = 'bob') AND t.kind = 'unbond' ORDER BY t.height, t.event_index"
            ))
        );
        assert_eq!(one_row("the largest transaction", &names), None);
        assert_eq!(one_row("when did someone unbond", &names), None);
        assert_eq!(
            one_row("the first transaction with a transfer", &names),
            None
        );
        // A name after an article is a noun.
        let with_validator: Vec<String> = vec!["validator".into(), "bob".into()];
        assert_eq!(
            mentioned_names(
                "Who bonded to the validator? bob or validator?",
                &with_validator
            ),
            vec!["bob".to_string(), "validator".to_string()]
        );
        assert_eq!(
            mentioned_names("bonded to a validator", &with_validator),
            Vec::<String>::new()
        );
        // Not one transfer: several, a count, a total, a number, a window, an unplaced name.
        for question in [
            "the 3 largest transfers",
            "How many transfers were larger than the first one?",
            "total of the largest transfer and the smallest",
            "the largest transfer in block 12",
            "the largest transfer this week",
            "the largest transfer and bob",
            "the largest and the smallest transfer",
            "the largest stake",
        ] {
            assert_eq!(one_row(question, &names), None, "{question}");
        }
        // Net flows.
        let sent = |n: &str| flow(Some(n), None);
        let received = |n: &str| flow(None, Some(n));
        assert_eq!(
            net_flow(
                "What's bob's net transfer flow - how much more did he receive than he sent?",
                &names
            ),
            Some(format!(
                "SELECT {} - {} AS net_hib",
                received("bob"),
                sent("bob")
            ))
        );
        assert_eq!(
            net_flow("How much more did alice send than she received?", &names),
            Some(format!(
                "SELECT {} - {} AS net_hib",
                sent("alice"),
                received("alice")
            ))
        );
        assert_eq!(
            net_flow(
                "How much more HIB did alice send to bob than bob sent back to her?",
                &names
            ),
            Some(format!(
                "SELECT {} - {} AS net_hib",
                flow(Some("alice"), Some("bob")),
                flow(Some("bob"), Some("alice"))
            ))
        );
        assert_eq!(
            net_flow(
                "how much did alice send carol in total, compared to what carol sent back to alice?",
                &names
            ),
            Some(format!(
                "SELECT {} AS \"alice_to_carol_hib\", {} AS \"carol_to_alice_hib\"",
                flow(Some("alice"), Some("carol")),
                flow(Some("carol"), Some("alice"))
            ))
        );
        for question in [
            "Did alice send more than 5 HIB?",
            "Did alice send more than bob?",
            "What is bob's net stake?",
            "How much did alice send?",
        ] {
            assert_eq!(net_flow(question, &names), None, "{question}");
        }
        // Two compared.
        assert_eq!(
            two_compared("Between bob and carol, who has sent more HIB via transfers, and how much did each send?", &names).as_deref(),
            Some("SELECT l.name, sum(t.amount_hib) AS sent_hib FROM transfers t JOIN labels l ON l.address = t.\"from\" WHERE l.name IN ('bob', 'carol') GROUP BY l.name ORDER BY sent_hib DESC")
        );
        assert_eq!(
            two_compared("Did bob send more HIB to alice or to carol?", &names).as_deref(),
            Some(
                "SELECT l.name, sum(t.amount_hib) AS received_hib FROM transfers t JOIN labels l ON l.address = t.\"to\" WHERE l.name IN ('alice', 'carol') AND t.\"from\" IN (SELECT address FROM labels WHERE name = 'bob') GROUP BY l.name ORDER BY received_hib DESC LIMIT 1"
            )
        );
        assert_eq!(
            two_compared("Who received more transfers, alice or dave?", &names).as_deref(),
            Some(
                "SELECT l.name, count(*) AS transfers FROM transfers t JOIN labels l ON l.address = t.\"to\" WHERE l.name IN ('alice', 'dave') GROUP BY l.name ORDER BY transfers DESC LIMIT 1"
            )
        );
        assert_eq!(two_compared("Did alice send more than bob?", &names), None);
        assert_eq!(
            two_compared("Who has more stake, alice or bob?", &names),
            None
        );
    }
}
