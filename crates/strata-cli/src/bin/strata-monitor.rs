//! `strata-monitor`: the small process that watches a detached container
//! (see the `strata_monitor` crate); `strata` execs it, never a user.

fn main() {
    strata_monitor::main()
}
