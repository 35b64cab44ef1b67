//! The diff page of a state covers every kind of change, and names the
//! transform attribute that covers each one.

#[upshift::state(name = "bookkeeping")]
mod ledger {
    /// v1: accounts and a log.
    #[version(1)]
    pub struct Ledger {
        pub accounts: Vec<Account>,
        pub log: Log,
        pub audit: Audit,
        pub scratch: u8,
    }

    #[version(1)]
    pub struct Account {
        pub id: u32,
        pub kind: Kind,
    }

    #[version(1)]
    pub enum Kind {
        Checking,
        Savings(u8),
        Old,
    }

    #[version(1)]
    pub struct Log {
        pub lines: Vec<String>,
    }

    #[version(1)]
    pub struct Audit {
        pub done: bool,
    }

    /// v2: every kind of change at once.
    #[version(2)]
    pub struct Ledger {
        #[upshift(from = "accounts")]
        pub books: Vec<Book>,
        #[upshift(from = "log", with = count_lines)]
        pub log_lines: u64,
        pub audit: Audit,
        #[upshift(default = start_at_one)]
        pub epoch: u32,
    }

    #[version(2)]
    #[upshift(from = "Account")]
    pub struct Book {
        pub id: u32,
        pub kind: Kind,
    }

    #[version(2)]
    pub enum Kind {
        Checking,
        Savings(#[upshift(with = u16::from)] u16),
        #[upshift(from = "Old")]
        Legacy,
        Credit,
    }

    #[version(2)]
    #[upshift(transform = restart_audit)]
    pub struct Audit {
        pub entries: u32,
    }

    fn start_at_one() -> u32 {
        1
    }

    fn count_lines(log: v1::Log) -> u64 {
        log.lines.len() as u64
    }

    fn restart_audit(old: v1::Audit) -> v2::Audit {
        v2::Audit {
            entries: u32::from(old.done),
        }
    }
}

const EXPECTED: &str = "# State `bookkeeping`: versions and what changed

| version | types | summary |
|---|---|---|
| v1 | `Ledger`, `Account`, `Kind`, `Log`, `Audit` | v1: accounts and a log. |
| v2 | `Ledger`, `Book`, `Kind`, `Audit` | v2: every kind of change at once. |

## v1

- `struct Ledger { accounts: Vec<Account>, log: Log, audit: Audit, scratch: u8 }`
- `struct Account { id: u32, kind: Kind }`
- `enum Kind { Checking, Savings(0: u8), Old }`
- `struct Log { lines: Vec<String> }`
- `struct Audit { done: bool }`

## v2

- `struct Ledger { books: Vec<Book>, log_lines: u64, audit: Audit, epoch: u32 }`
  - `books` — **upgraded** through the changed types it holds, from `accounts` (`from = \"accounts\"`)
  - `log_lines` — **retyped** from `log: Log` by `with = count_lines`
  - `audit` — **upgraded** through the changed types it holds
  - `epoch` — **added** `u32`, starts from `default = start_at_one`
  - `scratch` — **removed**
- `struct Book { id: u32, kind: Kind }` — **renamed** from `Account` (`from = \"Account\"`)
  - `kind` — **upgraded** through the changed types it holds
- `enum Kind { Checking, Savings(0: u16), Legacy, Credit }`
  - `Savings` — **changed fields**; each field by its own rule
  - `Legacy` — **renamed**, from `Old` (`from = \"Old\"`)
  - `Credit` — **added** variant
- `struct Audit { entries: u32 }` — **converted** from `Audit` by `transform = restart_audit`
- `Log` — **removed type**
";

#[test]
fn the_state_diff_page_names_every_change_and_its_attribute() {
    let page = upshift::docs::state_markdown(ledger::VERSIONS);
    assert_eq!(page, EXPECTED, "rendered:\n{page}");
}

#[test]
fn the_state_schema_records_how_each_member_came_to_be() {
    use upshift::schema::{MemberChange, Origin};
    let v2 = &ledger::v2::SCHEMA;
    assert_eq!(v2.removed[..], ["Log"]);
    let book = v2.type_named("Book").expect("Book in v2");
    assert_eq!(
        book.origin,
        Origin::Continues {
            from: "Account".into()
        }
    );
    let ledger = v2.type_named("Ledger").expect("Ledger in v2");
    assert_eq!(ledger.removed[..], ["scratch"]);
    assert_eq!(
        ledger.members[1].change,
        MemberChange::Converted {
            from: "log".into(),
            from_ty: "Log".into(),
            with: "count_lines".into()
        }
    );
    let audit = v2.type_named("Audit").expect("Audit in v2");
    assert_eq!(audit.members[0].change, MemberChange::ByTransform);
    let json = upshift::docs::state_json(ledger::VERSIONS);
    assert!(json.contains(
        "\"origin\":{\"kind\":\"transform\",\"from\":\"Audit\",\"with\":\"restart_audit\"}"
    ));
    assert!(json.contains("\"removed\":[\"Log\"]"));
    // What `upshift docs` reads, written by the macro, is the same.
    assert_eq!(ledger::__DOCS_JSON, json);
}

#[test]
fn the_transforms_the_page_describes_run() {
    use upshift::state::Upgrade;
    let old = ledger::v1::Ledger {
        accounts: vec![ledger::v1::Account {
            id: 7,
            kind: ledger::v1::Kind::Old,
        }],
        log: ledger::v1::Log {
            lines: vec!["a".into(), "b".into()],
        },
        audit: ledger::v1::Audit { done: true },
        scratch: 9,
    };
    let new = ledger::v2::Ledger::upgrade(old).expect("the v1 ledger upgrades");
    assert_eq!(new.log_lines, 2);
    assert_eq!(new.epoch, 1);
    assert_eq!(new.audit.entries, 1);
    assert!(matches!(new.books[0].kind, ledger::v2::Kind::Legacy));
}
