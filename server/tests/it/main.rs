//! Black-box tests: the real server over real HTTP, on SQLite and on PostgreSQL + Redis.

mod common;
mod mock;

mod admin;
mod alerts;
mod auth;
mod config;
mod faults;
mod gateway;
mod hardening;
mod import;
mod instances;
mod jobs;
mod lifecycle;
mod openapi;
mod ops;
mod python;
