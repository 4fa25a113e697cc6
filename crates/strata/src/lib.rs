//! strata: a daemonless container engine built on content-addressed,
//! shared, read-only layers.
//!
//! Data flows one way: blobs enter the [`content`] store (verified by
//! digest), are unpacked ([`unpack`], [`layer`]) into one directory per layer
//! ([`snapshot`]), recorded in the metadata [`store`], and stacked into views.
//! [`engine::Engine`] is the API the `strata` binary calls.

#![warn(missing_docs)]

pub mod build;
pub mod check;
pub mod confined;
pub mod container;
pub mod content;
pub mod core;
pub mod digest;
pub mod dockerfile;
pub mod engine;
pub mod error;
pub mod events;
pub mod explore;
pub mod fault;
pub mod filter;
pub mod image;
pub mod images;
pub mod layer;
pub mod layers;
pub mod network;
pub mod registry;
pub mod reserve;
pub mod rootless;
pub mod snapshot;
pub mod store;
pub mod tmp;
pub mod trace;
pub mod tree;
pub mod units;
pub mod unpack;
pub mod volume;
pub mod wildcard;
pub mod work;

pub use digest::Digest;
pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, Result};
