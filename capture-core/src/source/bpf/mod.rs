//! Capture filters (`--bpf "tcp port 80"`): the commonly used part of pcap-filter(7), compiled
//! by our own compiler to classic BPF, so that the binary needs no libpcap.
//!
//! # Layout
//! - [`lex`] and [`parse`]: the filter text to an [`ast::Node`], with libpcap's precedence and
//!   qualifier inheritance, and errors that name the column ([`error`]); [`value`]: what a
//!   value means under its qualifiers;
//! - [`names`]: the built-in service, protocol and ethertype names;
//! - [`lower`]: what each primitive means, as tests on the packet;
//! - [`compile`]: the tests to classic BPF instructions ([`insn`]);
//! - [`interp`]: a safe interpreter with the kernel's semantics, and [`packet`]: what the kernel
//!   would see of a packet read from a file.
//!
//! The program is link-layer independent, because a live AF_PACKET socket on `any` receives
//! frames with different link headers: the network protocol comes from the ancillary load of
//! `skb->protocol` (VLAN tags already taken off) and every header field is read relative to the
//! network header (`SKF_NET_OFF`). The same program is attached to the socket for live capture
//! and run by [`interp`] over packets from files and the demo.

pub mod ast;
pub mod compile;
pub mod error;
pub mod insn;
pub mod interp;
pub mod lex;
pub mod lower;
pub mod names;
pub mod packet;
pub mod parse;
pub mod value;

#[cfg(test)]
mod tests;

use std::str::FromStr;

pub use error::{BpfError, ErrorKind};
pub use insn::{BPF_MAXINSNS, Insn};
pub use interp::{PacketView, Program};
pub use parse::{MAX_FILTER_BYTES, MAX_NESTING};

use crate::source::Packet;

/// A compiled capture filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    expression: String,
    normalized: String,
    program: Program,
}

impl Filter {
    /// Parses and compiles `expression`; the empty filter keeps every packet.
    pub fn compile(expression: &str) -> Result<Filter, BpfError> {
        let ast = parse::parse(expression)?;
        let cond = lower::lower(&ast);
        let too_long = |n: String| {
            BpfError::at(
                expression,
                0..expression.len(),
                ErrorKind::Limit,
                format!(
                    "the filter compiles to {n} instructions; the kernel takes at most {BPF_MAXINSNS} (split it, or use \
                     `net` and `portrange` instead of long lists)"
                ),
            )
        };
        let insns = compile::generate(&cond).map_err(|_| too_long(format!("more than {BPF_MAXINSNS}")))?;
        let program = Program::new(insns).map_err(|e| {
            BpfError::at(
                expression,
                0..expression.len(),
                ErrorKind::Limit,
                format!("the compiled program is invalid: {e}"),
            )
        })?;
        Ok(Filter {
            expression: expression.to_string(),
            normalized: ast.to_string(),
            program,
        })
    }

    /// The filter as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The filter with every primitive fully qualified (`tcp port 80 or 443` gives `tcp port 80
    /// or tcp port 443`); it compiles to the same program.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The program as `tcpdump -d` would list it.
    pub fn disassemble(&self) -> String {
        insn::disassemble(self.program.insns())
    }

    /// Runs the filter over a captured packet; a packet whose link header we cannot read is
    /// rejected.
    pub fn matches(&self, pkt: &Packet<'_>) -> bool {
        packet::view(pkt).is_some_and(|v| self.program.matches(&v))
    }
}

impl FromStr for Filter {
    type Err = BpfError;

    fn from_str(s: &str) -> Result<Filter, BpfError> {
        Filter::compile(s)
    }
}
