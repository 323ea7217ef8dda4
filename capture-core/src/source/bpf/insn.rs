//! Classic BPF instructions: the encoding the kernel takes (`struct sock_filter`: a 16-bit
//! opcode, two 8-bit relative jump offsets and a 32-bit constant), the opcode numbers of
//! `linux/filter.h` and `linux/bpf_common.h`, and a disassembler in the spirit of `tcpdump -d`.

use std::fmt;

/// The kernel refuses longer programs (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;
/// Scratch memory words (`BPF_MEMWORDS`).
pub const BPF_MEMWORDS: u32 = 16;

// Instruction classes (the low three bits).
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;

// Load sizes.
pub const W: u16 = 0x00;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;

// Load modes.
pub const IMM: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MEM: u16 = 0x60;
pub const LEN: u16 = 0x80;
pub const MSH: u16 = 0xa0;

// ALU operations.
pub const ADD: u16 = 0x00;
pub const SUB: u16 = 0x10;
pub const MUL: u16 = 0x20;
pub const DIV: u16 = 0x30;
pub const OR: u16 = 0x40;
pub const AND: u16 = 0x50;
pub const LSH: u16 = 0x60;
pub const RSH: u16 = 0x70;
pub const NEG: u16 = 0x80;
pub const MOD: u16 = 0x90;
pub const XOR: u16 = 0xa0;

// Jumps.
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;

// Operand source: the constant `k` or the index register X.
pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
/// `ret a`: return the accumulator.
pub const RET_A: u16 = 0x10;

// MISC operations.
pub const TAX: u16 = 0x00;
pub const TXA: u16 = 0x80;

/// Linux's negative load offsets (`linux/filter.h`). An absolute load at `SKF_AD_OFF + n` reads
/// ancillary data instead of packet bytes; one at `SKF_NET_OFF + n` reads byte `n` of the network
/// header wherever the link header ended; `SKF_LL_OFF + n` byte `n` of the link header.
pub const SKF_AD_OFF: i32 = -0x1000;
/// Ancillary: `skb->protocol`, the ethertype (host order) of the network header, after any VLAN
/// tag the kernel took off.
pub const SKF_AD_PROTOCOL: i32 = 0;
pub const SKF_NET_OFF: i32 = -0x10_0000;
pub const SKF_LL_OFF: i32 = -0x20_0000;

/// One instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    /// A non-jump instruction.
    pub const fn stmt(code: u16, k: u32) -> Insn {
        Insn { code, jt: 0, jf: 0, k }
    }

    /// A conditional jump: `jt`/`jf` instructions forward when true/false.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }

    pub const fn class(&self) -> u16 {
        self.code & 0x07
    }
}

/// A load offset as written in the disassembly: `[net+9]`, `[proto]`, `[14]`.
fn offset(k: u32, indexed: bool) -> String {
    let s = k as i32;
    let x = if indexed { "x+" } else { "" };
    if !indexed && (SKF_AD_OFF..0).contains(&s) {
        return match s - SKF_AD_OFF {
            SKF_AD_PROTOCOL => "[proto]".to_string(),
            n => format!("[ancillary {n}]"),
        };
    }
    if (SKF_NET_OFF..SKF_AD_OFF).contains(&s) {
        format!("[{x}net+{}]", s - SKF_NET_OFF)
    } else if (SKF_LL_OFF..SKF_NET_OFF).contains(&s) {
        format!("[{x}ll+{}]", s - SKF_LL_OFF)
    } else if indexed {
        format!("[x+{s}]")
    } else {
        format!("[{k}]")
    }
}

impl fmt::Display for Insn {
    /// One instruction without its position; jumps show their relative offsets (`jt +2`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = match self.code & 0x18 {
            W => "",
            H => "h",
            B => "b",
            _ => "?",
        };
        let src = if self.code & X != 0 {
            "x".to_string()
        } else {
            format!("#{:#x}", self.k)
        };
        match self.class() {
            LD => match self.code & 0xe0 {
                IMM => write!(f, "ld #{:#x}", self.k),
                ABS => write!(f, "ld{size} {}", offset(self.k, false)),
                IND => write!(f, "ld{size} {}", offset(self.k, true)),
                MEM => write!(f, "ld M[{}]", self.k),
                LEN => write!(f, "ld #pktlen"),
                _ => write!(f, "unknown ld {:#06x}", self.code),
            },
            LDX => match self.code & 0xe0 {
                IMM => write!(f, "ldx #{:#x}", self.k),
                MEM => write!(f, "ldx M[{}]", self.k),
                LEN => write!(f, "ldx #pktlen"),
                MSH => write!(f, "ldxb 4*({}&0xf)", offset(self.k, false)),
                _ => write!(f, "unknown ldx {:#06x}", self.code),
            },
            ST => write!(f, "st M[{}]", self.k),
            STX => write!(f, "stx M[{}]", self.k),
            ALU => {
                let op = match self.code & 0xf0 {
                    ADD => "add",
                    SUB => "sub",
                    MUL => "mul",
                    DIV => "div",
                    OR => "or",
                    AND => "and",
                    LSH => "lsh",
                    RSH => "rsh",
                    NEG => return write!(f, "neg"),
                    MOD => "mod",
                    XOR => "xor",
                    _ => "alu?",
                };
                write!(f, "{op} {src}")
            }
            JMP => {
                let op = match self.code & 0xf0 {
                    JA => return write!(f, "ja +{}", self.k),
                    JEQ => "jeq",
                    JGT => "jgt",
                    JGE => "jge",
                    JSET => "jset",
                    _ => "j?",
                };
                write!(f, "{op} {src} jt +{} jf +{}", self.jt, self.jf)
            }
            RET => {
                if self.code & RET_A != 0 {
                    write!(f, "ret a")
                } else {
                    write!(f, "ret #{}", self.k)
                }
            }
            _ => match self.code & 0xf8 {
                TAX => write!(f, "tax"),
                TXA => write!(f, "txa"),
                _ => write!(f, "unknown misc {:#06x}", self.code),
            },
        }
    }
}

/// A whole program, one numbered instruction per line, jumps resolved to absolute positions as
/// `tcpdump -d` prints them.
pub fn disassemble(insns: &[Insn]) -> String {
    let mut out = String::new();
    for (pc, i) in insns.iter().enumerate() {
        let line = if i.class() == JMP && i.code & 0xf0 != JA {
            let text = i.to_string();
            let head = text.split(" jt ").next().unwrap_or(&text).to_string();
            format!(
                "{head:<24} jt {} jf {}",
                pc + 1 + usize::from(i.jt),
                pc + 1 + usize::from(i.jf)
            )
        } else if i.class() == JMP {
            format!("ja {}", pc as u64 + 1 + u64::from(i.k))
        } else {
            i.to_string()
        };
        out.push_str(&format!("({pc:03}) {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disassembly_names_the_linux_offsets() {
        let prog = [
            Insn::stmt(LD | H | ABS, (SKF_AD_OFF + SKF_AD_PROTOCOL) as u32),
            Insn::jump(JMP | JEQ | K, 0x800, 0, 4),
            Insn::stmt(LDX | B | MSH, SKF_NET_OFF as u32),
            Insn::stmt(LD | H | IND, (SKF_NET_OFF + 2) as u32),
            Insn::jump(JMP | JEQ | K, 80, 0, 1),
            Insn::stmt(RET | K, u32::MAX),
            Insn::stmt(RET | K, 0),
        ];
        let text = disassemble(&prog);
        assert_eq!(
            text,
            "(000) ldh [proto]\n\
             (001) jeq #0x800               jt 2 jf 6\n\
             (002) ldxb 4*([net+0]&0xf)\n\
             (003) ldh [x+net+2]\n\
             (004) jeq #0x50                jt 5 jf 6\n\
             (005) ret #4294967295\n\
             (006) ret #0\n"
        );
        assert_eq!(Insn::stmt(LD | W | LEN, 0).to_string(), "ld #pktlen");
        assert_eq!(Insn::stmt(ALU | AND | K, 0xff).to_string(), "and #0xff");
        assert_eq!(Insn::stmt(JMP | JA, 3).to_string(), "ja +3");
    }
}
