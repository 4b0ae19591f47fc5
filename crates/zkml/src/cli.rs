//! The `hibana zk` subcommand.
