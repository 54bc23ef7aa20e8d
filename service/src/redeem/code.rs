//! The text of a redeem code: `RC-` and 28 Crockford base32 characters (140 bits from the OS
//! CSPRNG) in groups of four, e.g. `RC-7K2M-…`. Input is read case- and dash-insensitively,
//! with Crockford's look-alikes (`I`/`L` for `1`, `O` for `0`); only the SHA-256 of the
//! canonical text is stored.

use rand::TryRngCore as _;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CHARS: usize = 28;
const GROUP: usize = 4;

/// A code in canonical form (the 28 characters, no prefix or dashes).
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Code({})", self.prefix())
    }
}

impl Code {
    /// A new code from the operating system's random source.
    pub fn generate() -> Result<Code, rand::rand_core::OsError> {
        let mut bytes = [0u8; CHARS];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes)?;
        // 32 divides 256: taking 5 bits of each byte is uniform.
        Ok(Code(
            bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect(),
        ))
    }

    /// Reads a code as a person may type it. `None` when it is not one. A one-api / new-api
    /// code (32 hexadecimal digits, as `tollgate import` carried it over) is read too.
    pub fn parse(text: &str) -> Option<Code> {
        Self::parse_own(text).or_else(|| {
            let t = text.trim();
            (t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| Code(t.to_ascii_lowercase()))
        })
    }

    fn parse_own(text: &str) -> Option<Code> {
        let mut body = String::with_capacity(CHARS);
        let upper = text.trim().to_ascii_uppercase();
        let rest = upper.strip_prefix("RC").unwrap_or(&upper);
        for c in rest.chars() {
            let c = match c {
                '-' | ' ' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return None,
            };
            if body.len() == CHARS {
                return None;
            }
            body.push(c);
        }
        (body.len() == CHARS).then_some(Code(body))
    }

    /// As handed out: `RC-XXXX-XXXX-…`.
    pub fn display(&self) -> String {
        let mut s = String::with_capacity(3 + CHARS + CHARS / GROUP);
        s.push_str("RC");
        for (n, c) in self.0.chars().enumerate() {
            if n % GROUP == 0 {
                s.push('-');
            }
            s.push(c);
        }
        s
    }

    /// What lists show of it: the first group.
    pub fn prefix(&self) -> String {
        format!("RC-{}…", &self.0[..GROUP])
    }

    /// The stored form: the SHA-256 of the canonical text, in hex.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_however_they_are_typed() {
        let code = Code::generate().expect("os random");
        let shown = code.display();
        assert_eq!(shown.len(), 3 + 28 + 6);
        assert!(shown.starts_with("RC-"));
        assert_eq!(Code::parse(&shown), Some(code.clone()));
        assert_eq!(Code::parse(&shown.to_lowercase()), Some(code.clone()));
        assert_eq!(Code::parse(&shown.replace('-', "")), Some(code.clone()));
        assert_eq!(
            Code::parse(&format!("  {} ", &shown[3..])),
            Some(code.clone())
        );
        let lookalikes = shown.replace('1', "l").replace('0', "o");
        assert_eq!(Code::parse(&lookalikes), Some(code.clone()));
        assert_eq!(code.digest().len(), 64);
        assert_eq!(code.prefix(), format!("{}…", &shown[..7]));
    }

    #[test]
    fn an_imported_one_api_code_reads_case_blind() {
        let c = Code::parse("0123456789abcdef0123456789ABCDEF").expect("code");
        assert_eq!(
            Some(c.clone()),
            Code::parse(" 0123456789ABCDEF0123456789abcdef ")
        );
        assert_eq!(
            c.digest(),
            hex::encode(Sha256::digest(b"0123456789abcdef0123456789abcdef"))
        );
        assert!(Code::parse("0123456789abcdef0123456789abcde").is_none());
        assert!(Code::parse("0123456789abcdef0123456789abcdeg").is_none());
    }

    #[test]
    fn text_that_is_not_a_code_is_refused() {
        let shown = Code::generate().expect("os random").display();
        for bad in [
            "",
            "RC-",
            &shown[..shown.len() - 1],
            &format!("{shown}A"),
            &shown.replace(&shown[3..4], "U"),
            &shown.replace(&shown[3..4], "é"),
            "sk-abcdefabcdefabcdefabcdefabcdef",
        ] {
            assert_eq!(Code::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_character_is_used() {
        let mut seen = [false; 32];
        for _ in 0..64 {
            for c in Code::generate().expect("os random").0.bytes() {
                seen[ALPHABET.iter().position(|&a| a == c).expect("alphabet")] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }
}
