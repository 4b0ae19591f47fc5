//! Queries composed from a question's words and the event tables, without the model: one
//! event the question singles out, a net flow, two accounts compared. Each returns `None`
//! unless the words fit its shape; [`super::Asker::ask`] runs what they return first.

use super::{
    AMOUNT_WORDS, NUMBER_WORDS, ONE_NAME_PER_ADDRESS, Party, RECEIVING, SENDING, TIME_WORDS,
    asks_count, bounds, counted_words, parties, party_clause, sizes, spaced, stated_limit,
    verb_party,
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
            "net",
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

/// Names as a list of SQL strings, each quote doubled (`'alice', 'o''brien'`).
fn quoted_list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| format!("'{}'", n.as_ref().replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names of `names` a question mentions, in the order it mentions them, each once (a
/// label after an article is a noun: `the validator`).
pub(super) fn mentioned_names(question: &str, names: &[String]) -> Vec<String> {
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
    let each = ["each", "both", "respectively", "every"]
        .iter()
        .any(|w| words.contains(w));
    if words.iter().any(|w| w.parse::<f64>().is_ok())
        || !about_transfers(&q)
        || !(words.contains(&"more") || each)
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
    let mut filter = format!("l.name IN ({})", quoted_list(&compared));
    if let Some(o) = other.first() {
        filter.push_str(&format!(
            " AND {}",
            party_clause(&format!("t.{other_column}"), o)
        ));
    }
    let limit = if each { "" } else { " LIMIT 1" };
    Some(format!(
        "SELECT l.name, {measure} AS {alias} FROM transfers t JOIN labels l ON l.address = t.{column} WHERE {filter} GROUP BY l.name ORDER BY {alias} DESC{limit}"
    ))
}

/// An account's part in an event table that a question may rank or list accounts by: the
/// nouns that name it, the verbs it does, where it is read from, and what its rows count as.
struct Role {
    nouns: &'static [&'static str],
    verbs: &'static [&'static str],
    table: &'static str,
    column: &'static str,
    filter: &'static str,
    counted: &'static str,
}

/// Words of a validator proposing blocks.
const PROPOSING: &[&str] = &["proposed", "propose", "proposes", "produced", "produce"];
/// Words of bonding stake.
const BONDING: &[&str] = &[
    "bonded",
    "bond",
    "bonds",
    "staked",
    "stake",
    "stakes",
    "delegated",
    "delegate",
    "delegates",
];
/// Words of unbonding stake.
const UNBONDING: &[&str] = &[
    "unbonded",
    "unbond",
    "unbonds",
    "unstaked",
    "unstake",
    "undelegated",
    "undelegate",
];

/// The parts [`ranked`] and [`accounts_who`] know; a transfer's parties only where the
/// question is about transfers, a fee's payer and a transaction's sender where it names them.
const ROLES: &[Role] = &[
    Role {
        nouns: &["sender", "senders", "spender", "spenders", "outgoing"],
        verbs: SENDING,
        table: "transfers",
        column: "\"from\"",
        filter: "",
        counted: "transfers",
    },
    Role {
        nouns: &[
            "recipient",
            "recipients",
            "receiver",
            "receivers",
            "payee",
            "payees",
            "incoming",
        ],
        verbs: RECEIVING,
        table: "transfers",
        column: "\"to\"",
        filter: "",
        counted: "transfers",
    },
    Role {
        nouns: &["proposer", "proposers"],
        verbs: PROPOSING,
        table: "blocks",
        column: "proposer",
        filter: "",
        counted: "blocks",
    },
    Role {
        nouns: &[
            "delegator",
            "delegators",
            "staker",
            "stakers",
            "bonder",
            "bonders",
        ],
        verbs: BONDING,
        table: "stakes",
        column: "delegator",
        filter: " WHERE t.kind = 'bond'",
        counted: "bonds",
    },
    Role {
        nouns: &["unbonder", "unbonders"],
        verbs: UNBONDING,
        table: "stakes",
        column: "delegator",
        filter: " WHERE t.kind = 'unbond'",
        counted: "unbonds",
    },
    Role {
        nouns: &["payer", "payers"],
        verbs: &["paid", "pay", "pays", "spent", "spend", "spends"],
        table: "fees",
        column: "payer",
        filter: "",
        counted: "transactions",
    },
    Role {
        nouns: &["sender", "senders", "signer", "signers"],
        verbs: &[
            "sent",
            "send",
            "sends",
            "submitted",
            "submit",
            "submits",
            "signed",
            "made",
            "make",
            "makes",
        ],
        table: "transactions",
        column: "sender",
        filter: "",
        counted: "transactions",
    },
];

/// Words before `stake` that make it what an account holds (`some stake`, `zero stake`), not
/// a verb of bonding.
const HOLDING: &[&str] = &[
    "some", "any", "no", "zero", "a", "nonzero", "positive", "their", "its", "the", "have", "has",
    "with", "of", "hold", "holds", "holding",
];

/// The roles a question's words give an account (a noun of the part, or a verb of it), by the
/// table its words are about: fees where it says fee, transactions where it says transaction
/// and not transfer, stakes where it says bond or stake, else transfers and blocks.
fn roles_in(q: &str) -> Vec<(usize, &'static Role)> {
    let words: Vec<&str> = q.split_whitespace().collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let fees = has(&["fee", "fees"]);
    let transactions = has(&["transaction", "transactions", "tx", "txs"])
        && !has(&["transfer", "transfers", "payment", "payments"]);
    let mut found: Vec<(usize, &'static Role)> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        // `some stake`, `have stake`: what an account holds, not a bond.
        if ["stake", "stakes"].contains(w) && i > 0 && HOLDING.contains(&words[i - 1]) {
            continue;
        }
        // `give me`, `make us`: a request, not a payment.
        if words.get(i + 1).is_some_and(|n| ["me", "us"].contains(n)) {
            continue;
        }
        let role = ROLES.iter().find(|r| {
            let fits = match r.table {
                "fees" => fees,
                "transactions" => transactions && !fees,
                "transfers" => !fees && !transactions && about_transfers(q),
                _ => true,
            };
            fits && (r.nouns.contains(w) || r.verbs.contains(w))
        });
        if let Some(role) = role {
            found.push((i, role));
        }
    }
    found
}

/// The SQL of a question that ranks accounts by what they did (`top 3 senders by total HIB`,
/// `which address proposed the most blocks`, `who received the fewest transfers`, `for each
/// delegator, how much was bonded`): the events of that part grouped by account, with its
/// name, its address, how many and how much, ordered by what the words measure (a count where
/// they count rows, `most transfers`; else the amount), as many rows as they ask for. A name
/// the question places on the other side of a transfer filters it (`who sent the most to
/// bob`). None for one event (`the biggest transfer`), a stated bound or window, or a part
/// the words do not give exactly.
pub(super) fn ranked(question: &str, names: &[String]) -> Option<String> {
    // `Most first`, `largest first`: an order, not the first event.
    let mut q = spaced(question);
    for size in [
        "most", "largest", "highest", "biggest", "least", "smallest", "lowest", "fewest",
    ] {
        q = q.replace(&format!(" {size} first "), &format!(" {size} "));
    }
    let words: Vec<&str> = q.split_whitespace().collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let limit = stated_limit(question);
    let numbers = words
        .iter()
        .filter(|w| {
            w.trim_end_matches('%').parse::<f64>().is_ok()
                || NUMBER_WORDS.iter().any(|(n, _)| n == *w)
        })
        .count();
    if numbers > usize::from(limit.is_some())
        || has(TIME_WORDS)
        || has(&[
            "than",
            "between",
            "net",
            "single",
            "first",
            "last",
            "latest",
            "earliest",
            "never",
            "percentage",
            "percent",
            "share",
            "median",
            "balance",
            "balances",
            "power",
        ])
    {
        return None;
    }
    let (largest, smallest) = sizes(question);
    // Grouped by the part itself (`for each sender`, `per person`, `rank the delegators`), not
    // by something else (`per kind`).
    let found = roles_in(&q);
    let role = found.first()?.1;
    let grouped_noun = |w: &&str| {
        role.nouns.contains(w)
            || [
                "person",
                "people",
                "account",
                "accounts",
                "address",
                "addresses",
                "user",
            ]
            .contains(w)
    };
    let grouping = words.iter().enumerate().any(|(i, w)| {
        ["each", "every", "per"].contains(w) && words[i + 1..].iter().take(2).any(grouped_noun)
    }) || (has(&["rank", "ranked", "ranking", "leaderboard"])
        && words.iter().any(grouped_noun));
    let ordered = largest != smallest || (grouping && !largest && !smallest);
    if !ordered {
        return None;
    }
    // One event, not a total: `the biggest transfer`, `the largest bond`.
    const ONE_EVENT: &[&str] = &[
        "transfer",
        "payment",
        "transaction",
        "tx",
        "bond",
        "unbond",
        "delegation",
        "block",
        "fee",
    ];
    let extreme = |w: &str| {
        [
            "biggest", "largest", "highest", "maximum", "greatest", "most", "top", "smallest",
            "lowest", "least", "minimum", "fewest",
        ]
        .contains(&w)
    };
    let at_extreme: Vec<usize> = (0..words.len()).filter(|&i| extreme(words[i])).collect();
    if at_extreme
        .iter()
        .any(|&i| words[i + 1..].iter().take(2).any(|w| ONE_EVENT.contains(w)))
    {
        return None;
    }
    if found
        .iter()
        .any(|(_, r)| r.table != role.table || r.column != role.column || r.filter != role.filter)
    {
        return None;
    }
    // Names: only a transfer's other side, placed by the words.
    let mentioned = mentioned_names(question, names);
    let mut filters: Vec<String> = Vec::new();
    if !role.filter.is_empty() {
        filters.push(role.filter.trim_start_matches(" WHERE ").to_string());
    }
    if !mentioned.is_empty() {
        if role.table != "transfers" {
            return None;
        }
        let placed = parties(question, names);
        let other = match role.column {
            "\"from\"" => Party::Recipient,
            _ => Party::Sender,
        };
        for name in &mentioned {
            match placed.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, part)) if *part == other => {
                    filters.push(party_clause(&format!("t.{}", other.columns().0), name));
                }
                _ => return None,
            }
        }
    }
    // What the rows are ordered by: a count where the words count rows (`most transfers`,
    // `how many`), an average where they say so, else the amount.
    let amounts = role.table != "blocks" && role.table != "transactions";
    let counted_nouns = [
        role.counted,
        "times",
        "payments",
        "transactions",
        "txs",
        "blocks",
        "bonds",
        "delegations",
    ];
    let counting = !amounts
        || asks_count(question)
        || at_extreme.iter().any(|&i| {
            words[i + 1..]
                .iter()
                .take(2)
                .any(|w| counted_nouns.contains(w))
        })
        || (role.counted == "transfers"
            && words.contains(&"transfers")
            && !words.iter().any(|w| {
                AMOUNT_WORDS.contains(w) || ["amount", "total", "volume", "value"].contains(w)
            })
            && !q.contains(" how much "));
    let average = amounts && has(&["average", "mean", "avg"]);
    let mut columns = vec![format!("count(*) AS {}", role.counted)];
    if amounts {
        columns.push("sum(t.amount_hib) AS total_hib".to_string());
    }
    if average {
        columns.push("avg(t.amount_hib) AS average_hib".to_string());
    }
    let measure = if average {
        "average_hib"
    } else if counting {
        role.counted
    } else {
        "total_hib"
    };
    let dir = if smallest { "" } else { " DESC" };
    // One row for `who`, `which account`, `the sender`, or where nothing plural is named
    // (`top sender`); every row for `senders`, `accounts` or a grouping; else the number stated.
    let singular = [" who ", " whom ", " whose "].iter().any(|w| q.contains(w))
        || words.iter().enumerate().any(|(i, w)| {
            ["which", "what", "the"].contains(w)
                && words.get(i + 1).is_some_and(|n| {
                    [
                        "account",
                        "address",
                        "person",
                        "name",
                        "wallet",
                        "user",
                        "validator",
                    ]
                    .contains(n)
                        || (role.nouns.contains(n) && !n.ends_with('s'))
                })
        });
    let plural = words
        .iter()
        .any(|w| role.nouns.contains(w) && w.ends_with('s'))
        || has(&["accounts", "addresses", "people", "users", "wallets"]);
    let limit = match limit {
        Some(n) => format!(" LIMIT {n}"),
        None if !grouping && (singular || !plural) => " LIMIT 1".to_string(),
        None => String::new(),
    };
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    Some(format!(
        "SELECT n.name, t.{col} AS address, {cols} FROM {table} t LEFT JOIN {ONE_NAME_PER_ADDRESS} n ON n.address = t.{col}{filter} GROUP BY t.{col}, n.name ORDER BY {measure}{dir}, n.name{limit}",
        col = role.column,
        cols = columns.join(", "),
        table = role.table,
    ))
}

/// Nouns that name accounts rather than events (`which accounts`, `how many people`).
const ACCOUNT_NOUNS: &[&str] = &[
    "accounts",
    "addresses",
    "people",
    "users",
    "wallets",
    "names",
    "recipients",
    "senders",
    "everyone",
    "everybody",
    "anyone",
    "anybody",
];

/// Whether a noun of accounts follows one of `leads` within four words (`which of the user
/// accounts`, `list the people`).
fn names_accounts_after(words: &[&str], leads: &[&str]) -> bool {
    words.iter().enumerate().any(|(i, w)| {
        leads.contains(w)
            && words[i + 1..]
                .iter()
                .take(4)
                .any(|n| ACCOUNT_NOUNS.contains(n))
    })
}

/// Whether the question counts accounts (`how many accounts`, `how many different people`).
fn counts_accounts(question: &str) -> bool {
    counted_words(question).iter().any(|w| {
        ACCOUNT_NOUNS.contains(&w.as_str())
            || ["distinct", "unique", "different"].contains(&w.as_str())
    })
}

/// The SQL of a question about whom one named account sent to or received from (`who did
/// alice send HIB to`, `who has paid bob`, `how many different people did carol send to`):
/// the accounts on the other side of its transfers, each with its name, address, how many
/// transfers and how much, or their count where the words count them. None where the question
/// ranks, bounds, singles out one transfer or names other than the one account.
pub(super) fn counterparties(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question);
    let words: Vec<&str> = q.split_whitespace().collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let counting = counts_accounts(question);
    // `Who`, `which accounts`, `list the people`; not `list every transfer`.
    let asks_who = q.starts_with(" who ")
        || q.starts_with(" whom ")
        || q.starts_with(" to whom ")
        || q.starts_with(" from whom ")
        || names_accounts_after(&words, &["which", "what", "list"]);
    if !(asks_who || counting)
        || !about_transfers(&q)
        || words.iter().any(|w| w.parse::<f64>().is_ok())
        || has(TIME_WORDS)
        || has(&[
            "most", "least", "fewest", "top", "biggest", "largest", "smallest", "highest",
            "lowest", "first", "last", "latest", "earliest", "never", "than", "between", "net",
            "average", "single", "only",
        ])
    {
        return None;
    }
    let [name] = mentioned_names(question, names).try_into().ok()?;
    let placed = parties(question, names);
    let (_, part) = placed.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name))?;
    let (column, other) = part.columns();
    let filter = party_clause(&format!("t.{column}"), &name);
    Some(if counting {
        format!(
            "SELECT count(DISTINCT t.{other}) AS accounts, count(*) AS transfers, sum(t.amount_hib) AS total_hib FROM transfers t WHERE {filter}"
        )
    } else {
        format!(
            "SELECT n.name, t.{other} AS address, count(*) AS transfers, sum(t.amount_hib) AS total_hib FROM transfers t LEFT JOIN {ONE_NAME_PER_ADDRESS} n ON n.address = t.{other} WHERE {filter} GROUP BY t.{other}, n.name ORDER BY n.name, t.{other}"
        )
    })
}

/// The SQL of a question about accounts that did or never did something (`list everyone who
/// has bonded`, `which accounts received transfers but never sent any`, `how many accounts
/// have never proposed a block`): every known account (with a balance or a label) with its
/// name and address, kept where each part the words give holds (`never`, `not`, `without`
/// before a verb: it does not), or their count where the words count accounts. None where the
/// words neither list nor negate, or give no part.
pub(super) fn accounts_who(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question).replace('’', "'");
    let words: Vec<&str> = q.split_whitespace().collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let counting = counts_accounts(question);
    // Accounts, not events: `list all unbonds` lists the unbonds themselves.
    let listing = has(&["never", "everyone", "everybody"])
        || counting
        || names_accounts_after(&words, &["which", "what", "all", "the", "list"])
        || (has(&["list"]) && q.contains(" who "));
    // `Among alice, bob and carol, who …`, `which of bob and dave …`: only those accounts.
    let mentioned = mentioned_names(question, names);
    let among = q.contains(" among ") || q.contains(" which of ") || q.contains(" who of ");
    let listing = listing || (among && q.contains(" who "));
    if !listing
        || !(mentioned.is_empty() || (among && mentioned.len() >= 2))
        || words.iter().any(|w| w.parse::<f64>().is_ok())
        || has(TIME_WORDS)
        || has(&[
            "most", "least", "fewest", "top", "biggest", "largest", "total", "each", "per",
        ])
    {
        return None;
    }
    let found = roles_in(&q);
    let mut terms: Vec<String> = Vec::new();
    // Stake held (`have some stake`, `zero stake`, `no stake`): the account's stake now,
    // unless a verb says what was done with it (`never bonded any stake`).
    for (i, w) in words.iter().enumerate() {
        if found.is_empty()
            && ["stake", "stakes"].contains(w)
            && i > 0
            && HOLDING.contains(&words[i - 1])
        {
            let none = ["no", "zero"].contains(&words[i - 1])
                || words[i.saturating_sub(3)..i]
                    .iter()
                    .any(|w| ["never", "not", "without"].contains(w) || w.ends_with("n't"));
            terms.push(format!(
                "a.address {}IN (SELECT address FROM accounts WHERE stake > 0)",
                if none { "NOT " } else { "" }
            ));
        }
    }
    if found.is_empty() && terms.is_empty() {
        return None;
    }
    for (i, role) in &found {
        // A noun of the part (`senders`) does not negate; a verb after `never`, `not`, a
        // `-n't` or `without` within three words does.
        let negated = role.verbs.contains(&words[*i])
            && words[i.saturating_sub(3)..*i]
                .iter()
                .any(|w| ["never", "not", "without", "no"].contains(w) || w.ends_with("n't"));
        let sub = format!(
            "SELECT t.{} FROM {} t{}",
            role.column, role.table, role.filter
        );
        let term = format!("a.address {}IN ({sub})", if negated { "NOT " } else { "" });
        if !terms.contains(&term) {
            terms.push(term);
        }
    }
    if !mentioned.is_empty() {
        terms.push(format!(
            "a.address IN (SELECT address FROM labels WHERE name IN ({}))",
            quoted_list(&mentioned)
        ));
    }
    let rows = format!(
        "SELECT n.name, a.address FROM (SELECT address FROM accounts UNION SELECT address FROM labels) a LEFT JOIN {ONE_NAME_PER_ADDRESS} n ON n.address = a.address WHERE {}",
        terms.join(" AND ")
    );
    Some(if counting {
        format!("SELECT count(*) AS accounts FROM ({rows})")
    } else {
        format!("{rows} ORDER BY n.name, a.address")
    })
}

/// The SQL of a question about stake still bonded (`bob's net stake`, `bonded minus
/// unbonded`, `how much is still staked`): bonded, unbonded and their difference in HIB, of
/// the one delegator named or of everyone, by delegator where the words ask for each. None
/// for anything else.
pub(super) fn net_stake(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question);
    let words: Vec<&str> = q.split_whitespace().collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if !has(&[
        "stake",
        "staked",
        "bonded",
        "delegated",
        "delegation",
        "bond",
    ]) || !has(&[
        "net",
        "minus",
        "still",
        "remaining",
        "outstanding",
        "currently",
    ]) || has(TIME_WORDS)
        || words.iter().any(|w| w.parse::<f64>().is_ok())
    {
        return None;
    }
    let columns = "sum(CASE WHEN t.kind = 'bond' THEN t.amount_hib ELSE 0 END) AS bonded_hib, sum(CASE WHEN t.kind = 'unbond' THEN t.amount_hib ELSE 0 END) AS unbonded_hib, sum(CASE WHEN t.kind = 'bond' THEN t.amount_hib WHEN t.kind = 'unbond' THEN -t.amount_hib ELSE 0 END) AS net_staked_hib";
    match mentioned_names(question, names).as_slice() {
        [] if has(&["each", "per", "every"]) => Some(format!(
            "SELECT n.name, t.delegator, {columns} FROM stakes t LEFT JOIN {ONE_NAME_PER_ADDRESS} n ON n.address = t.delegator GROUP BY t.delegator, n.name ORDER BY net_staked_hib DESC, n.name"
        )),
        [] => Some(format!("SELECT {columns} FROM stakes t")),
        [one] => Some(format!(
            "SELECT {columns} FROM stakes t WHERE {}",
            party_clause("t.delegator", one)
        )),
        _ => None,
    }
}

/// The SQL of a question about time between two points of the chain (`how many seconds
/// elapsed between the first block and the latest`, `how long from block 5 to block 20`, `the
/// average block time`): the difference of the times of the first and the last rows of the
/// table the words name (blocks unless transfers, transactions or bonds), or of the two stated
/// heights, in the unit asked (seconds by default); the average over the gaps between blocks
/// where the words say average. None for anything else.
pub(super) fn time_span(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question).replace('-', " ");
    let words: Vec<&str> = q.split_whitespace().collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let units: &[(&str, &str, &str)] = &[
        ("milliseconds", "1.0", "milliseconds"),
        ("ms", "1.0", "milliseconds"),
        ("seconds", "1000.0", "seconds"),
        ("secs", "1000.0", "seconds"),
        ("minutes", "60000.0", "minutes"),
        ("mins", "60000.0", "minutes"),
        ("hours", "3600000.0", "hours"),
    ];
    let unit = units
        .iter()
        .find(|(u, _, _)| {
            q.contains(&format!(" how many {u} ")) || q.contains(&format!(" in {u} "))
        })
        .or_else(|| {
            (q.contains(" how long ")
                || q.contains(" how much time ")
                || has(&["elapsed", "duration", "span", "timespan"])
                || q.contains(" block time "))
            .then_some(&units[2])
        })?;
    if !mentioned_names(question, names).is_empty()
        || has(&["each", "per", "every"]) && !q.contains(" per block ")
    {
        return None;
    }
    let average = has(&["average", "mean", "typical"]);
    let heights: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|(i, w)| {
            w.parse::<u64>().is_ok()
                && *i > 0
                && ["block", "blocks", "height", "heights"].contains(&words[i - 1])
                || w.parse::<u64>().is_ok()
                    && *i > 1
                    && ["and", "to", "through", "until"].contains(&words[i - 1])
        })
        .map(|(_, w)| *w)
        .collect();
    let other_numbers = words.iter().filter(|w| w.parse::<f64>().is_ok()).count() != heights.len();
    let latest_end = has(&["latest", "last", "newest", "recent", "current", "now"]);
    let first_end = has(&["first", "earliest", "oldest", "genesis"]);
    let (table, filter) = if heights.len() == 2 && !other_numbers {
        (
            "blocks",
            format!(" WHERE height IN ({}, {})", heights[0], heights[1]),
        )
    } else if heights.len() == 1 && !other_numbers && latest_end != first_end {
        // `between block 1 and the latest block`: the stated height and the end named.
        let end = if latest_end { "max" } else { "min" };
        (
            "blocks",
            format!(
                " WHERE height IN ({}, (SELECT {end}(height) FROM blocks))",
                heights[0]
            ),
        )
    } else if heights.is_empty() && !other_numbers {
        let ends = (has(&["first", "earliest", "oldest", "genesis", "start"])
            && has(&["latest", "last", "newest", "recent", "current", "now"]))
            || (average
                && (q.contains(" between blocks ")
                    || q.contains(" block time ")
                    || q.contains(" per block ")));
        if !ends {
            return None;
        }
        let table = if average {
            "blocks"
        } else if has(&["transfer", "transfers", "payment", "payments"]) {
            "transfers"
        } else if has(&["transaction", "transactions", "tx", "txs"]) {
            "transactions"
        } else if has(&["bond", "bonds", "stake", "stakes"]) {
            "stakes"
        } else {
            "blocks"
        };
        (table, String::new())
    } else {
        return None;
    };
    let (_, divisor, alias) = unit;
    let span = format!("(CAST(max(time) AS BIGINT) - CAST(min(time) AS BIGINT)) / {divisor}");
    Some(if average {
        format!(
            "SELECT {span} / CAST(nullif(count(*) - 1, 0) AS DOUBLE) AS average_{alias} FROM {table}{filter}"
        )
    } else {
        format!("SELECT {span} AS {alias} FROM {table}{filter}")
    })
}

/// The SQL of a question about validators' voting power or keys (`the validator's voting
/// power`, `which validator has the most power`): each validator's row with its name, address,
/// key and power, largest first, the first only where the words single one out. None where
/// the words total it, count validators or name other tables.
pub(super) fn validator_power(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question).replace("'s ", " ").replace("’s ", " ");
    let words: Vec<&str> = q.split_whitespace().collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if !has(&["validator", "validators"])
        || !(has(&["power"]) || q.contains(" public key ") || has(&["pubkey"]))
        || has(&[
            "total",
            "sum",
            "combined",
            "all",
            "average",
            "mean",
            "transfer",
            "transfers",
            "block",
            "blocks",
            "transaction",
            "transactions",
            "bond",
            "bonds",
            "bonded",
            "delegated",
            "delegators",
            "fee",
            "fees",
            "percentage",
            "percent",
            "share",
        ])
        || asks_count(question)
        || has(TIME_WORDS)
        || words.iter().any(|w| w.parse::<f64>().is_ok())
        || !mentioned_names(question, names).is_empty()
    {
        return None;
    }
    let (largest, smallest) = sizes(question);
    let dir = if smallest && !largest { "" } else { " DESC" };
    let one = !has(&["validators", "each", "every", "list"]);
    let limit = if one { " LIMIT 1" } else { "" };
    Some(format!(
        "SELECT n.name, v.address, v.public_key, v.power, v.power_hib FROM validators v LEFT JOIN {ONE_NAME_PER_ADDRESS} n ON n.address = v.address ORDER BY v.power{dir}, v.address{limit}"
    ))
}

/// The SQL of a question about accounts' balances (`alice's balance`, `the richest account`,
/// `the lowest balance among the named accounts`, `how many accounts hold a positive
/// balance`, `the total balance of bob and carol`): each account with its name, address,
/// balance and stake, filtered on the accounts named and the bounds stated, ordered by
/// balance where the words ask for an extreme; a count, total or average where they ask for
/// one. None where the words name events (transfers, blocks, fees, bonds) or a time.
pub(super) fn balances(question: &str, names: &[String]) -> Option<String> {
    let q = spaced(question).replace("'s ", " ").replace("’s ", " ");
    let words: Vec<&str> = q.split_whitespace().collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if !has(&[
        "balance",
        "balances",
        "richest",
        "poorest",
        "wealthiest",
        "holds",
        "hold",
        "holding",
        "holdings",
        "holders",
    ]) || has(TIME_WORDS)
        || has(&[
            "transfer",
            "transfers",
            "payment",
            "payments",
            "transaction",
            "transactions",
            "tx",
            "txs",
            "fee",
            "fees",
            "block",
            "blocks",
            "height",
            "bond",
            "bonds",
            "bonded",
            "unbond",
            "unbonded",
            "reward",
            "rewards",
            "emission",
            "emissions",
            "sent",
            "received",
            "after",
            "before",
            "change",
            "changed",
            "history",
            "than",
        ])
    {
        return None;
    }
    let mentioned = mentioned_names(question, names);
    let limit = stated_limit(question);
    let mut terms: Vec<String> = Vec::new();
    let stated = bounds(question);
    for (op, number, unit) in &stated {
        if !(unit.is_empty() || AMOUNT_WORDS.contains(&unit.as_str())) {
            return None;
        }
        terms.push(format!("a.balance_hib{op}{number}"));
    }
    let numbers = words
        .iter()
        .filter(|w| w.parse::<f64>().is_ok() || NUMBER_WORDS.iter().any(|(n, _)| n == *w))
        .count();
    if numbers > stated.len() + usize::from(limit.is_some()) {
        return None;
    }
    if has(&["positive", "nonzero", "non-zero"]) {
        terms.push("a.balance > 0".to_string());
    } else if has(&["zero", "empty"]) {
        terms.push("a.balance = 0".to_string());
    }
    if !mentioned.is_empty() {
        terms.push(format!(
            "a.address IN (SELECT address FROM labels WHERE name IN ({}))",
            quoted_list(&mentioned)
        ));
    }
    let named_only = !mentioned.is_empty() || has(&["named", "labelled", "labeled", "known"]);
    let join = if named_only { "JOIN" } else { "LEFT JOIN" };
    let filter = if terms.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", terms.join(" AND "))
    };
    let from =
        format!("FROM accounts a {join} {ONE_NAME_PER_ADDRESS} n ON n.address = a.address{filter}");
    let (largest, smallest) = sizes(question);
    let richest = has(&["richest", "wealthiest"]);
    let poorest = has(&["poorest"]);
    if asks_count(question) {
        return Some(format!("SELECT count(*) AS accounts {from}"));
    }
    if has(&["total", "sum", "combined", "together", "altogether"]) {
        return Some(format!("SELECT sum(a.balance_hib) AS total_hib {from}"));
    }
    if has(&["average", "mean", "avg"]) {
        return Some(format!("SELECT avg(a.balance_hib) AS average_hib {from}"));
    }
    let columns = "n.name, a.address, a.balance, a.balance_hib, a.stake_hib";
    let high = largest || richest || (has(&["more", "higher", "bigger"]) && mentioned.len() == 2);
    let low = smallest || poorest || (has(&["less", "lower", "smaller"]) && mentioned.len() == 2);
    Some(match (high, low) {
        (true, true) => return None,
        (false, false) => format!("SELECT {columns} {from} ORDER BY a.balance DESC, a.address"),
        (high, _) => {
            let dir = if high { " DESC" } else { "" };
            // `the richest accounts`, `which accounts have the highest balances`: several.
            const PLURAL: &[&str] = &[
                "accounts",
                "addresses",
                "holders",
                "balances",
                "people",
                "wallets",
            ];
            let plural = words.iter().enumerate().any(|(i, w)| {
                (sizes(w) != (false, false) || ["richest", "poorest", "wealthiest"].contains(w))
                    && words[i + 1..].iter().take(2).any(|n| PLURAL.contains(n))
            }) || words
                .windows(2)
                .any(|p| ["which", "what"].contains(&p[0]) && PLURAL.contains(&p[1]));
            let limit = match limit {
                Some(n) => n,
                None if plural => return None,
                None => "1".to_string(),
            };
            format!("SELECT {columns} {from} ORDER BY a.balance{dir}, a.address LIMIT {limit}")
        }
    })
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
        assert_eq!(
            one_row(
                "what's bob's net delegated amount in hib after his unbond?",
                &names
            ),
            None
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
        assert_eq!(
            two_compared(
                "How much HIB did bob and carol each receive in transfers?",
                &names
            )
            .as_deref(),
            Some(
                "SELECT l.name, sum(t.amount_hib) AS received_hib FROM transfers t JOIN labels l ON l.address = t.\"to\" WHERE l.name IN ('bob', 'carol') GROUP BY l.name ORDER BY received_hib DESC"
            )
        );
        assert_eq!(two_compared("Did alice send more than bob?", &names), None);
        assert_eq!(
            two_compared("Who has more stake, alice or bob?", &names),
            None
        );
    }

    #[test]
    fn rankings_lists_net_stakes_spans_and_power() {
        let names: Vec<String> = ["alice", "bob", "carol", "dave", "validator"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let ranking = |question: &str| ranked(question, &names);
        let senders = "SELECT n.name, t.\"from\" AS address, count(*) AS transfers, sum(t.amount_hib) AS total_hib FROM transfers t LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = t.\"from\"";
        assert_eq!(
            ranking("Top 3 senders by total HIB sent, with their names and totals."),
            Some(format!(
                "{senders} GROUP BY t.\"from\", n.name ORDER BY total_hib DESC, n.name LIMIT 3"
            ))
        );
        assert_eq!(
            ranking("who sent the most transfers to bob?"),
            Some(format!(
                "{senders} WHERE t.\"to\" IN (SELECT address FROM labels WHERE name = 'bob') GROUP BY t.\"from\", n.name ORDER BY transfers DESC, n.name LIMIT 1"
            ))
        );
        assert!(
            ranking("number of incoming transfers per account name")
                .is_some_and(|sql| sql.contains("GROUP BY t.\"to\"")
                    && sql.contains("ORDER BY transfers DESC, n.name"))
        );
        assert_eq!(
            ranking("Which address has proposed the most blocks, and how many?"),
            Some("SELECT n.name, t.proposer AS address, count(*) AS blocks FROM blocks t LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = t.proposer GROUP BY t.proposer, n.name ORDER BY blocks DESC, n.name LIMIT 1".to_string())
        );
        assert_eq!(
            ranking("rank the recipients by how much they received"),
            Some("SELECT n.name, t.\"to\" AS address, count(*) AS transfers, sum(t.amount_hib) AS total_hib FROM transfers t LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = t.\"to\" GROUP BY t.\"to\", n.name ORDER BY total_hib DESC, n.name".to_string())
        );
        assert!(ranking("who paid the most in fees?").is_some_and(
            |sql| sql.contains("FROM fees t") && sql.contains("ORDER BY total_hib DESC")
        ));
        assert!(
            ranking("which delegator bonded the fewest HIB?")
                .is_some_and(|sql| sql.contains("WHERE t.kind = 'bond'")
                    && sql.contains("ORDER BY total_hib, n.name LIMIT 1"))
        );
        // One event, a bound, a window, a name in the ranked part: not a ranking.
        for question in [
            "who sent the biggest transfer?",
            "who sent the most in the last 10 blocks?",
            "which senders sent more than 5 HIB?",
            "did alice send the most?",
            "who has the highest balance?",
            "which block had the most transactions?",
            "Give me a count of events per kind.",
            "List every transfer carol made, with the amount in HIB",
            "how many transfers per block?",
        ] {
            assert_eq!(ranking(question), None, "{question}");
        }

        // Whom one account sent to or received from.
        assert_eq!(
            counterparties("Who did alice send HIB to?", &names).as_deref(),
            Some(
                "SELECT n.name, t.\"to\" AS address, count(*) AS transfers, sum(t.amount_hib) AS total_hib FROM transfers t LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = t.\"to\" WHERE t.\"from\" IN (SELECT address FROM labels WHERE name = 'alice') GROUP BY t.\"to\", n.name ORDER BY n.name, t.\"to\""
            )
        );
        assert_eq!(
            counterparties(
                "how many different people has bob received HIB from?",
                &names
            )
            .as_deref(),
            Some(
                "SELECT count(DISTINCT t.\"from\") AS accounts, count(*) AS transfers, sum(t.amount_hib) AS total_hib FROM transfers t WHERE t.\"to\" IN (SELECT address FROM labels WHERE name = 'bob')"
            )
        );
        for question in [
            "who sent the most to bob?",
            "who did alice send 5 HIB to?",
            "who sent to alice and bob?",
            "who staked with bob?",
        ] {
            assert_eq!(counterparties(question, &names), None, "{question}");
        }

        // Accounts that did, or never did, something.
        let everyone = "SELECT n.name, a.address FROM (SELECT address FROM accounts UNION SELECT address FROM labels) a LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = a.address WHERE";
        assert_eq!(
            accounts_who(
                "which accounts received transfers but never sent any?",
                &names
            ),
            Some(format!(
                "{everyone} a.address IN (SELECT t.\"to\" FROM transfers t) AND a.address NOT IN (SELECT t.\"from\" FROM transfers t) ORDER BY n.name, a.address"
            ))
        );
        assert_eq!(
            accounts_who("How many accounts haven't bonded any stake?", &names),
            Some(format!(
                "SELECT count(*) AS accounts FROM ({everyone} a.address NOT IN (SELECT t.delegator FROM stakes t WHERE t.kind = 'bond'))"
            ))
        );
        assert_eq!(
            accounts_who("List everyone who has proposed a block.", &names),
            Some(format!(
                "{everyone} a.address IN (SELECT t.proposer FROM blocks t) ORDER BY n.name, a.address"
            ))
        );
        assert_eq!(
            accounts_who(
                "Among alice, bob, carol and dave, who has never bonded any stake?",
                &names
            ),
            Some(format!(
                "{everyone} a.address NOT IN (SELECT t.delegator FROM stakes t WHERE t.kind = 'bond') AND a.address IN (SELECT address FROM labels WHERE name IN ('alice', 'bob', 'carol', 'dave')) ORDER BY n.name, a.address"
            ))
        );
        assert_eq!(
            accounts_who("Which of the user accounts have zero stake?", &names),
            Some(format!(
                "{everyone} a.address NOT IN (SELECT address FROM accounts WHERE stake > 0) ORDER BY n.name, a.address"
            ))
        );
        assert_eq!(
            accounts_who("How many accounts have some stake?", &names),
            Some(format!(
                "SELECT count(*) AS accounts FROM ({everyone} a.address IN (SELECT address FROM accounts WHERE stake > 0))"
            ))
        );
        for question in [
            "who sent the most?",
            "who has never paid bob?",
            "List all unbonds with amount and release height",
            "did bob never send?",
            "which accounts exist?",
            "list the transfers",
        ] {
            assert_eq!(accounts_who(question, &names), None, "{question}");
        }

        // Net stake.
        assert!(
            net_stake("what's bob's net stake, bonded minus unbonded?", &names).is_some_and(
                |sql| sql.ends_with("FROM stakes t WHERE t.delegator IN (SELECT address FROM labels WHERE name = 'bob')")
            )
        );
        assert!(
            net_stake("how much is still staked per delegator?", &names)
                .is_some_and(|sql| sql.contains("GROUP BY t.delegator"))
        );
        assert_eq!(net_stake("how much did bob stake?", &names), None);

        // Time spans.
        assert_eq!(
            time_span(
                "How many seconds elapsed between the first block and the most recent one?",
                &names
            )
            .as_deref(),
            Some(
                "SELECT (CAST(max(time) AS BIGINT) - CAST(min(time) AS BIGINT)) / 1000.0 AS seconds FROM blocks"
            )
        );
        assert_eq!(
            time_span("how long, in minutes, from block 5 to block 20?", &names).as_deref(),
            Some(
                "SELECT (CAST(max(time) AS BIGINT) - CAST(min(time) AS BIGINT)) / 60000.0 AS minutes FROM blocks WHERE height IN (5, 20)"
            )
        );
        assert_eq!(
            time_span(
                "how many seconds passed between block 1 and the latest block?",
                &names
            )
            .as_deref(),
            Some(
                "SELECT (CAST(max(time) AS BIGINT) - CAST(min(time) AS BIGINT)) / 1000.0 AS seconds FROM blocks WHERE height IN (1, (SELECT max(height) FROM blocks))"
            )
        );
        assert!(
            time_span("what is the average block time?", &names)
                .is_some_and(|sql| sql.contains("nullif(count(*) - 1, 0)"))
        );
        for question in [
            "how long has alice held her stake?",
            "when was the first block?",
            "how many seconds between block 5 and the last one in the past 3 hours?",
        ] {
            assert_eq!(time_span(question, &names), None, "{question}");
        }

        // Balances.
        let accounts = |join: &str, tail: &str| {
            format!(
                "SELECT n.name, a.address, a.balance, a.balance_hib, a.stake_hib FROM accounts a {join} (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = a.address{tail}"
            )
        };
        assert_eq!(
            balances(
                "What is the lowest balance among the named accounts?",
                &names
            ),
            Some(accounts("JOIN", " ORDER BY a.balance, a.address LIMIT 1"))
        );
        assert_eq!(
            balances("who is the richest account?", &names),
            Some(accounts(
                "LEFT JOIN",
                " ORDER BY a.balance DESC, a.address LIMIT 1"
            ))
        );
        assert_eq!(
            balances("what's dave's balance?", &names),
            Some(accounts(
                "JOIN",
                " WHERE a.address IN (SELECT address FROM labels WHERE name IN ('dave')) ORDER BY a.balance DESC, a.address"
            ))
        );
        assert_eq!(
            balances("How many accounts hold a positive balance?", &names).as_deref(),
            Some(
                "SELECT count(*) AS accounts FROM accounts a LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = a.address WHERE a.balance > 0"
            )
        );
        assert!(
            balances("how many accounts have a balance above 100 HIB?", &names)
                .is_some_and(|sql| sql.ends_with("WHERE a.balance_hib > 100"))
        );
        for question in [
            "what was alice's balance before block 5?",
            "who sent the most from their balance?",
            "the richest accounts",
        ] {
            assert_eq!(balances(question, &names), None, "{question}");
        }

        // Validators' power.
        assert_eq!(
            validator_power("What is the validator's voting power, in HIB?", &names).as_deref(),
            Some(
                "SELECT n.name, v.address, v.public_key, v.power, v.power_hib FROM validators v LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) n ON n.address = v.address ORDER BY v.power DESC, v.address LIMIT 1"
            )
        );
        assert!(
            validator_power("list the validators by voting power", &names)
                .is_some_and(|sql| !sql.contains("LIMIT"))
        );
        for question in [
            "what is the total voting power?",
            "how many validators are there with power?",
            "how many blocks did the validator with the most power propose?",
        ] {
            assert_eq!(validator_power(question, &names), None, "{question}");
        }
    }
}
