use super::*;

fn listing(files: &[(&str, &str)], dirs: &[(&str, &str)]) -> Listing {
    Listing {
        files: files
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        dirs: dirs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        nested: Vec::new(),
    }
}

const DBMATE: &str = "-- migrate:up\nCREATE TABLE a ();\n-- migrate:down\nDROP TABLE a;\n";

#[test]
fn each_layout_is_detected_from_its_files() {
    let cases: [(Listing, Layout); 6] = [
        (
            listing(&[("V1__a.sql", ""), ("V2__b.sql", "")], &[]),
            Layout::Dbinit,
        ),
        (
            listing(
                &[("1_a.sql", ""), ("2_b.up.sql", ""), ("2_b.down.sql", "")],
                &[],
            ),
            Layout::Sqlx,
        ),
        (
            listing(&[("1_a.up.sql", ""), ("1_a.down.sql", "")], &[]),
            Layout::GolangMigrate,
        ),
        (
            listing(
                &[
                    (
                        "1_a.up.sql",
                        "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a)",
                    ),
                    ("1_a.down.sql", ""),
                ],
                &[],
            ),
            Layout::Sqlx,
        ),
        (
            listing(&[("20240101_a.sql", DBMATE), ("20240102.sql", DBMATE)], &[]),
            Layout::Dbmate,
        ),
        (
            listing(&[], &[("20240101123456_init", "CREATE TABLE a ();")]),
            Layout::Prisma,
        ),
    ];
    for (l, want) in cases {
        assert_eq!(detect(&l, "").expect("detected"), Some(want), "{l:?}");
    }
    assert_eq!(detect(&listing(&[], &[]), "").expect("empty"), None);
}

#[test]
fn mixed_and_unreadable_folders_name_the_files() {
    let e = detect(
        &listing(&[("V1__a.sql", ""), ("1_a.up.sql", "")], &[]),
        " in m",
    )
    .expect_err("mixed");
    assert!(
        e.contains("V1__a.sql (dbinit)") && e.contains("1_a.up.sql") && e.contains("in m"),
        "{e}"
    );
    let e = detect(&listing(&[("V1__a.sql", "")], &[("20240101_init", "")]), "")
        .expect_err("prisma too");
    assert!(e.contains("20240101_init/migration.sql (prisma)"), "{e}");
    // A dbmate folder with one file lacking its sections.
    let e = detect(
        &listing(
            &[("1_a.sql", DBMATE), ("2_b.sql", "CREATE TABLE b ();")],
            &[],
        ),
        "",
    )
    .expect_err("dbmate");
    assert!(
        e.contains("1_a.sql has `-- migrate:up`") && e.contains("2_b.sql has none"),
        "{e}"
    );
    let e = detect(&listing(&[("V1__a.sql", ""), ("schema.sql", "")], &[]), "").expect_err("stray");
    assert!(
        e.contains("\"schema.sql\"") && e.contains("V1__create_users.sql"),
        "{e}"
    );
    let e = detect(&listing(&[("V1_a.sql", "")], &[]), "").expect("dbinit-ish");
    assert_eq!(e, Some(Layout::Dbinit));
    let e = read(&listing(&[("V1_a.sql", "")], &[]), Layout::Dbinit, "").expect_err("bad name");
    assert!(e.contains("V1_a.sql"), "{e}");
}

#[test]
fn reading_pairs_down_files_and_refuses_duplicates_and_big_versions() {
    let l = listing(
        &[
            ("20230404095503_b.up.sql", "CREATE TABLE b ();"),
            (
                "20230404095503_b.down.sql",
                "DROP TABLE nope_this_would_fail;",
            ),
            ("1_a.up.sql", "CREATE TABLE a ();"),
            ("1_a.down.sql", "DROP TABLE a;"),
        ],
        &[],
    );
    let ms = read(&l, Layout::GolangMigrate, "").expect("ok");
    let v: Vec<i64> = ms.iter().map(Migration::version).collect();
    assert_eq!(v, vec![1, 20_230_404_095_503]);
    assert_eq!(ms[1].sql(), "CREATE TABLE b ();");
    assert_eq!(ms[1].down(), Some("20230404095503_b.down.sql"));
    assert_eq!(ms[1].to_string(), "20230404095503_b.up.sql");
    let e = read(
        &listing(&[("001_a.sql", DBMATE), ("1_b.sql", DBMATE)], &[]),
        Layout::Dbmate,
        "",
    )
    .expect_err("dup");
    assert!(
        e.contains("001_a.sql and 1_b.sql") && e.contains("same version 1"),
        "{e}"
    );
    let e = read(
        &listing(&[("9223372036854775808_big.sql", "")], &[]),
        Layout::Sqlx,
        "",
    )
    .expect_err("big");
    assert!(
        e.contains("9223372036854775808_big.sql") && e.contains("range"),
        "{e}"
    );
    let e = read(&listing(&[("2_x.down.sql", "")], &[]), Layout::Sqlx, "").expect_err("orphan");
    assert!(e.contains("without an up file"), "{e}");
    // sqlx would run a dbmate file's down section: refused, pointing at the dbmate layout.
    let e = read(&listing(&[("1_a.sql", DBMATE)], &[]), Layout::Sqlx, "").expect_err("down");
    assert!(e.contains("DBINIT_LAYOUT=dbmate"), "{e}");
    let e = read(
        &listing(&[("1_a.sql", "")], &[("2_b", "")]),
        Layout::Prisma,
        "",
    )
    .expect_err("file");
    assert!(e.contains("1_a.sql"), "{e}");
}

#[test]
fn versions_sort_numerically_up_to_i64_max() {
    let l = listing(
        &[
            ("V9223372036854775807__last.sql", ""),
            ("V20230404095503__ts.sql", ""),
            ("V2__two.sql", ""),
            ("V1__one.sql", ""),
        ],
        &[],
    );
    let ms = read(&l, Layout::Dbinit, "").expect("ok");
    let v: Vec<i64> = ms.iter().map(Migration::version).collect();
    assert_eq!(v, vec![1, 2, 20_230_404_095_503, i64::MAX]);
    assert_eq!(ms[3].to_string(), "V9223372036854775807__last");
}
