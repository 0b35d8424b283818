//! The router's pure core (issue 4 builds the consumer around it): what an event names
//! ([`inputs`]), where its run goes ([`decision`]), and the agent-run document ([`run`]).
//! No IO here.

pub mod decision;
pub mod inputs;
pub mod run;
