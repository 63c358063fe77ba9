//! Arithmetic expansion `$((...))`: evaluates brush-parser's arithmetic AST.

use crate::limits::{self, LimitError, MAX_ARITH_DEPTH, MAX_ARITH_LEN};
use brush_parser::ast::{
    ArithmeticExpr as E, ArithmeticTarget, BinaryOperator as B, UnaryAssignmentOperator as UA,
    UnaryOperator as U,
};

/// Variable access for arithmetic.
pub(crate) trait Vars {
    /// Current value of a variable (None if unset).
    fn get(&self, name: &str) -> Option<String>;
    /// Assigns a variable.
    fn set(&mut self, name: &str, value: String) -> Result<(), String>;
}

/// Parses and evaluates an already parameter-expanded arithmetic expression.
pub(crate) fn eval_str(text: &str, vars: &mut dyn Vars) -> Result<i64, String> {
    eval_at(text, vars, 0)
}

/// [`eval_str`] for the value of a variable `depth` references deep.
fn eval_at(text: &str, vars: &mut dyn Vars, depth: u32) -> Result<i64, String> {
    if text.trim().is_empty() {
        return Ok(0);
    }
    if text.len() > MAX_ARITH_LEN {
        return Err(too_complex(MAX_ARITH_LEN, "bytes"));
    }
    if depth > MAX_ARITH_DEPTH {
        return Err(too_complex(
            MAX_ARITH_DEPTH as usize,
            "nested variable references",
        ));
    }
    // The parse tree is evaluated and dropped (both recursive) on the parser's stack.
    let run = || {
        let expr = brush_parser::arithmetic::parse(text)
            .map_err(|_| format!("arithmetic expression: expecting primary: \"{text}\""))?;
        eval(&expr, vars, depth)
    };
    let levels = limits::arith_nesting(text);
    limits::bounded_parse(levels, run).map_err(|e| e.to_string())?
}

fn too_complex(limit: usize, what: &'static str) -> String {
    LimitError::Arith { limit, what }.to_string()
}

/// Parses an integer the way shells do: decimal, `0x` hex, leading-`0` octal.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<i64>().ok()?
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn var_name(t: &ArithmeticTarget) -> Result<&str, String> {
    match t {
        ArithmeticTarget::Variable(n) => Ok(n),
        ArithmeticTarget::ArrayElement(n, _) => Err(format!("{n}: arrays are not supported")),
    }
}

fn read_var(name: &str, vars: &mut dyn Vars, depth: u32) -> Result<i64, String> {
    match vars.get(name) {
        None => Ok(0),
        Some(v) if v.trim().is_empty() => Ok(0),
        Some(v) => match parse_int(&v) {
            Some(n) => Ok(n),
            None => eval_at(&v, vars, depth + 1).map_err(|e| {
                if e.starts_with("arithmetic expression too complex") {
                    e
                } else {
                    format!("Illegal number: {v}")
                }
            }),
        },
    }
}

/// Evaluates one node; each level keeps [`limits::RED_ZONE`] of stack free, since a
/// long operator chain is a deep tree.
fn eval(e: &E, vars: &mut dyn Vars, depth: u32) -> Result<i64, String> {
    stacker::maybe_grow(limits::RED_ZONE, limits::STACK_SEGMENT, || {
        eval_node(e, vars, depth)
    })
}

fn eval_node(e: &E, vars: &mut dyn Vars, depth: u32) -> Result<i64, String> {
    let eval = |e: &E, vars: &mut dyn Vars| eval(e, vars, depth);
    let read_var = |n: &str, vars: &mut dyn Vars| read_var(n, vars, depth);
    Ok(match e {
        E::Literal(n) => *n,
        E::Reference(t) => read_var(var_name(t)?, vars)?,
        E::UnaryOp(op, x) => {
            let v = eval(x, vars)?;
            match op {
                U::UnaryPlus => v,
                U::UnaryMinus => v.wrapping_neg(),
                U::BitwiseNot => !v,
                U::LogicalNot => (v == 0) as i64,
            }
        }
        E::BinaryOp(B::LogicalAnd, a, b) => (eval(a, vars)? != 0 && eval(b, vars)? != 0) as i64,
        E::BinaryOp(B::LogicalOr, a, b) => (eval(a, vars)? != 0 || eval(b, vars)? != 0) as i64,
        E::BinaryOp(op, a, b) => {
            let x = eval(a, vars)?;
            let y = eval(b, vars)?;
            binop(*op, x, y)?
        }
        E::Conditional(c, t, f) => {
            if eval(c, vars)? != 0 {
                eval(t, vars)?
            } else {
                eval(f, vars)?
            }
        }
        E::Assignment(t, x) => {
            let v = eval(x, vars)?;
            vars.set(var_name(t)?, v.to_string())?;
            v
        }
        E::BinaryAssignment(op, t, x) => {
            let name = var_name(t)?;
            let cur = read_var(name, vars)?;
            let rhs = eval(x, vars)?;
            let v = binop(*op, cur, rhs)?;
            vars.set(name, v.to_string())?;
            v
        }
        E::UnaryAssignment(op, t) => {
            let name = var_name(t)?;
            let cur = read_var(name, vars)?;
            let (new, result) = match op {
                UA::PrefixIncrement => (cur.wrapping_add(1), cur.wrapping_add(1)),
                UA::PrefixDecrement => (cur.wrapping_sub(1), cur.wrapping_sub(1)),
                UA::PostfixIncrement => (cur.wrapping_add(1), cur),
                UA::PostfixDecrement => (cur.wrapping_sub(1), cur),
            };
            vars.set(name, new.to_string())?;
            result
        }
    })
}

fn binop(op: B, x: i64, y: i64) -> Result<i64, String> {
    Ok(match op {
        B::Power => {
            if y < 0 {
                return Err("exponent less than 0".into());
            }
            x.wrapping_pow(y.min(u32::MAX as i64) as u32)
        }
        B::Multiply => x.wrapping_mul(y),
        B::Divide | B::Modulo if y == 0 => return Err("division by zero".into()),
        B::Divide => x.wrapping_div(y),
        B::Modulo => x.wrapping_rem(y),
        B::Comma => y,
        B::Add => x.wrapping_add(y),
        B::Subtract => x.wrapping_sub(y),
        B::ShiftLeft => x.wrapping_shl(y as u32),
        B::ShiftRight => x.wrapping_shr(y as u32),
        B::LessThan => (x < y) as i64,
        B::LessThanOrEqualTo => (x <= y) as i64,
        B::GreaterThan => (x > y) as i64,
        B::GreaterThanOrEqualTo => (x >= y) as i64,
        B::Equals => (x == y) as i64,
        B::NotEquals => (x != y) as i64,
        B::BitwiseAnd => x & y,
        B::BitwiseXor => x ^ y,
        B::BitwiseOr => x | y,
        B::LogicalAnd => (x != 0 && y != 0) as i64,
        B::LogicalOr => (x != 0 || y != 0) as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct M(HashMap<String, String>);
    impl Vars for M {
        fn get(&self, n: &str) -> Option<String> {
            self.0.get(n).cloned()
        }
        fn set(&mut self, n: &str, v: String) -> Result<(), String> {
            self.0.insert(n.into(), v);
            Ok(())
        }
    }

    #[test]
    fn evaluates() {
        let mut m = M(HashMap::new());
        assert_eq!(eval_str("1 + 2 * 3", &mut m).unwrap(), 7);
        assert_eq!(eval_str("x = 5, x += 2, x", &mut m).unwrap(), 7);
        assert_eq!(eval_str("x++ + 0", &mut m).unwrap(), 7);
        assert_eq!(m.0["x"], "8");
        assert_eq!(eval_str("7 % 3 == 1 ? 10 : 20", &mut m).unwrap(), 10);
        assert!(eval_str("1/0", &mut m).is_err());
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("010"), Some(8));
    }
}
