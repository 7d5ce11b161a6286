//! `make docs`: rewrites the generated tables of docs/ in place; `--check` only says which are
//! stale (exit 1), as the docs tests do.

fn main() -> std::process::ExitCode {
    let check = std::env::args().skip(1).any(|a| a == "--check");
    let root = dbinit_docgen::repo_root();
    let result = if check {
        dbinit_docgen::stale(&root).map(|stale| {
            for s in &stale {
                eprintln!("{s}");
            }
            stale.is_empty()
        })
    } else {
        dbinit_docgen::write(&root).map(|changed| {
            for c in &changed {
                println!("rewrote {c}");
            }
            true
        })
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dbinit-docgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
