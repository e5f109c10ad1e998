//! Use cases the handlers share: the steps between a validated request and the commands it
//! issues. Handlers parse and answer; what happens in between lives here.

pub mod password;
