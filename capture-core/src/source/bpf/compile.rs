//! Conditions to classic BPF. The program is written backwards from its two exits (`ret
//! ACCEPT`, `ret 0`): each condition is generated knowing where its true and false edges go, so
//! `and`/`or` short-circuit with plain jumps and `not` only swaps the edges. Conditional jumps
//! reach 255 instructions forward; a farther target gets a `ja` trampoline next to the jump.

use super::insn::*;
use super::lower::{Cond, Load, Op, Size, Test};

/// What an accepted packet returns: keep all of it (the kernel cuts at the ring's frame size).
pub const ACCEPT: u32 = u32::MAX;

/// The program would have more than [`BPF_MAXINSNS`] instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

struct Gen {
    /// The program in reverse: index 0 is the last instruction. A label is an index here.
    rev: Vec<Insn>,
}

impl Gen {
    fn emit(&mut self, i: Insn) -> Result<usize, TooLong> {
        if self.rev.len() >= BPF_MAXINSNS {
            return Err(TooLong);
        }
        self.rev.push(i);
        Ok(self.rev.len() - 1)
    }

    /// A conditional jump to labels `t`/`f`, through `ja` trampolines when one is too far.
    fn branch(&mut self, code: u16, k: u32, mut t: usize, mut f: usize) -> Result<usize, TooLong> {
        loop {
            let at = self.rev.len();
            let (dt, df) = (at - t - 1, at - f - 1);
            if dt > usize::from(u8::MAX) {
                t = self.emit(Insn::stmt(JMP | JA, dt as u32))?;
            } else if df > usize::from(u8::MAX) {
                f = self.emit(Insn::stmt(JMP | JA, df as u32))?;
            } else {
                return self.emit(Insn::jump(code, k, dt as u8, df as u8));
            }
        }
    }

    fn test(&mut self, x: &Test, t: usize, f: usize) -> Result<usize, TooLong> {
        let op = match x.op {
            Op::Eq => JEQ,
            Op::Gt => JGT,
            Op::Ge => JGE,
            Op::Set => JSET,
        };
        self.branch(JMP | op | K, x.k, t, f)?;
        if let Some(m) = x.mask {
            self.emit(Insn::stmt(ALU | AND | K, m))?;
        }
        let size = |s: Size| match s {
            Size::B => B,
            Size::H => H,
            Size::W => W,
        };
        // The load runs first, so it is emitted last: its label is the test's entry.
        let entry = match x.load {
            Load::Protocol => self.emit(Insn::stmt(LD | H | ABS, (SKF_AD_OFF + SKF_AD_PROTOCOL) as u32))?,
            Load::Len => self.emit(Insn::stmt(LD | W | LEN, 0))?,
            Load::Net(s, off) => self.emit(Insn::stmt(LD | size(s) | ABS, (SKF_NET_OFF as u32).wrapping_add(off)))?,
            Load::Ip4Payload(s, off) => {
                self.emit(Insn::stmt(LD | size(s) | IND, (SKF_NET_OFF as u32).wrapping_add(off)))?;
                // X = 4 × IHL, read from the first byte of the IPv4 header.
                self.emit(Insn::stmt(LDX | B | MSH, SKF_NET_OFF as u32))?
            }
        };
        Ok(entry)
    }

    /// Generates `c` with its true edge to `t` and false edge to `f`; returns its entry.
    fn cond(&mut self, c: &Cond, t: usize, f: usize) -> Result<usize, TooLong> {
        match c {
            Cond::True => Ok(t),
            Cond::False => Ok(f),
            Cond::Not(a) => self.cond(a, f, t),
            Cond::And(a, b) => {
                let b = self.cond(b, t, f)?;
                self.cond(a, b, f)
            }
            Cond::Or(a, b) => {
                let b = self.cond(b, t, f)?;
                self.cond(a, t, b)
            }
            Cond::Test(x) => self.test(x, t, f),
        }
    }
}

/// The program for `c`: at least one instruction, at most [`BPF_MAXINSNS`].
pub fn generate(c: &Cond) -> Result<Vec<Insn>, TooLong> {
    match c {
        Cond::True => return Ok(vec![Insn::stmt(RET | K, ACCEPT)]),
        Cond::False => return Ok(vec![Insn::stmt(RET | K, 0)]),
        _ => {}
    }
    let mut g = Gen { rev: Vec::new() };
    let reject = g.emit(Insn::stmt(RET | K, 0))?;
    let accept = g.emit(Insn::stmt(RET | K, ACCEPT))?;
    let entry = g.cond(c, accept, reject)?;
    let last = g.rev.len() - 1;
    if entry != last {
        g.emit(Insn::stmt(JMP | JA, (last - entry) as u32))?;
    }
    g.rev.reverse();
    Ok(g.rev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::bpf::{lower::lower, parse::parse};

    fn asm(f: &str) -> String {
        disassemble(&generate(&lower(&parse(f).unwrap())).unwrap())
    }

    #[test]
    fn protocol_and_ports_read_relative_to_the_network_header() {
        assert_eq!(
            asm("ip6"),
            "(000) ldh [proto]\n\
             (001) jeq #0x86dd              jt 2 jf 3\n\
             (002) ret #4294967295\n\
             (003) ret #0\n"
        );
        assert_eq!(
            asm("tcp dst port 80"),
            "(000) ldh [proto]\n\
             (001) jeq #0x800               jt 2 jf 9\n\
             (002) ldb [net+9]\n\
             (003) jeq #0x6                 jt 4 jf 9\n\
             (004) ldh [net+6]\n\
             (005) jset #0x1fff             jt 9 jf 6\n\
             (006) ldxb 4*([net+0]&0xf)\n\
             (007) ldh [x+net+2]\n\
             (008) jeq #0x50                jt 15 jf 9\n\
             (009) ldh [proto]\n\
             (010) jeq #0x86dd              jt 11 jf 16\n\
             (011) ldb [net+6]\n\
             (012) jeq #0x6                 jt 13 jf 16\n\
             (013) ldh [net+42]\n\
             (014) jeq #0x50                jt 15 jf 16\n\
             (015) ret #4294967295\n\
             (016) ret #0\n"
        );
        assert_eq!(
            asm("less 100"),
            "(000) ld #pktlen\n\
             (001) jgt #0x64                jt 3 jf 2\n\
             (002) ret #4294967295\n\
             (003) ret #0\n"
        );
        assert_eq!(asm(""), "(000) ret #4294967295\n");
    }
}
