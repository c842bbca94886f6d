//! The XML of a signed assertion or Response, written directly in Exclusive XML Canonicalization
//! form (xml-exc-c14n, without an InclusiveNamespaces list) and signed with the tenant's parsed key.
//!
//! Why not xmlsec here: samael's signing call takes the key as DER, and xmlsec parses it again for
//! every signature; under OpenSSL 3 that parse costs several times the RSA operation itself. The
//! documents are Sesame's own, so they can be written canonical from the start: the digest is
//! taken over exactly the bytes sent, and any verifier (xmlsec in pysaml2, samael) recomputes the
//! same form. Incoming signatures are still verified by xmlsec.
//!
//! The canonical form, for the documents written here: no XML declaration; every element with a
//! start and an end tag; a namespace declared on the first element of the output that uses its
//! prefix, unless an output ancestor declared it already (Sesame's attributes are unprefixed, so an
//! element declares at most its own prefix); then attributes sorted by name;
//! `&`, `<`, `>` and CR escaped in text, `&`, `<`, `"`, TAB, LF and CR in attribute values.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::crypto::keys::SamlKey;

pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// An element: its qualified name, the namespaces its prefixes stand for, its attributes and
/// its content.
#[derive(Debug, Clone)]
pub struct El {
    name: &'static str,
    /// The element's own prefix and namespace.
    own: (&'static str, &'static str),
    /// Further declarations, for descendants' prefixes.
    ns: Vec<(&'static str, &'static str)>,
    /// Kept sorted by name: the canonical order.
    attrs: Vec<(&'static str, String)>,
    children: Vec<Node>,
}

/// The namespace bindings in scope at an element: its own, then its ancestors'.
struct Scope<'a> {
    own: (&'static str, &'static str),
    more: &'a [(&'static str, &'static str)],
    up: Option<&'a Scope<'a>>,
}

impl Scope<'_> {
    fn find(&self, prefix: &str) -> Option<(&'static str, &'static str)> {
        if self.own.0 == prefix {
            return Some(self.own);
        }
        match self.more.iter().find(|(p, _)| *p == prefix) {
            Some(d) => Some(*d),
            None => self.up?.find(prefix),
        }
    }
}

/// The declarations the output carries above an element.
struct Rendered<'a> {
    decl: Option<(&'static str, &'static str)>,
    up: Option<&'a Rendered<'a>>,
}

impl Rendered<'_> {
    fn contains(&self, d: (&'static str, &'static str)) -> bool {
        self.decl == Some(d) || self.up.is_some_and(|up| up.contains(d))
    }
}

#[derive(Debug, Clone)]
enum Node {
    El(El),
    Text(String),
}

impl El {
    /// `<prefix:local>` in namespace `uri`.
    pub fn new(name: &'static str, uri: &'static str) -> El {
        let prefix = name.split_once(':').map_or("", |(p, _)| p);
        El {
            name,
            own: (prefix, uri),
            ns: Vec::new(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Declares another namespace for the prefixes of this element's descendants.
    pub fn ns(mut self, prefix: &'static str, uri: &'static str) -> El {
        self.ns.push((prefix, uri));
        self
    }

    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> El {
        let at = self.attrs.partition_point(|(k, _)| *k <= name);
        self.attrs.insert(at, (name, value.into()));
        self
    }

    pub fn child(mut self, child: El) -> El {
        self.children.push(Node::El(child));
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> El {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// The element's `ID` attribute.
    fn id(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == "ID")
            .map(|(_, v)| v.as_str())
    }

    /// The canonical form of this element as the apex of the output (exc-c14n: nothing rendered
    /// above it).
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.write(&mut out, None, None);
        out
    }

    // Scopes are chains on the stack, not lists collected per element: a signed Response is
    // written three times over (the digest, SignedInfo, the message), and allocating for every
    // element showed in the profile.
    fn write(&self, out: &mut String, up: Option<&Scope<'_>>, rendered: Option<&Rendered<'_>>) {
        let scope = Scope {
            own: self.own,
            more: &self.ns,
            up,
        };
        // Only the element's own prefix can need a declaration: Sesame's attributes are
        // unprefixed.
        let decl = scope
            .find(self.own.0)
            .filter(|d| !rendered.is_some_and(|r| r.contains(*d)));
        out.push('<');
        out.push_str(self.name);
        if let Some((p, uri)) = decl {
            if p.is_empty() {
                out.push_str(" xmlns=\"");
            } else {
                out.push_str(" xmlns:");
                out.push_str(p);
                out.push_str("=\"");
            }
            escape_attr(out, uri);
            out.push('"');
        }
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_attr(out, v);
            out.push('"');
        }
        out.push('>');
        let below = Rendered { decl, up: rendered };
        let below = match decl {
            Some(_) => Some(&below),
            None => rendered,
        };
        for child in &self.children {
            match child {
                Node::El(e) => e.write(out, Some(&scope), below),
                Node::Text(t) => escape_text(out, t),
            }
        }
        out.push_str("</");
        out.push_str(self.name);
        out.push('>');
    }

    /// Signs this element with an enveloped RSA-SHA256 signature (exclusive canonicalization)
    /// placed after its first child (the Issuer, where SAML's schema wants it).
    pub fn signed(mut self, key: &SamlKey) -> Result<El, openssl::error::ErrorStack> {
        let id = self.id().unwrap_or_default().to_string();
        let digest = STANDARD.encode(Sha256::digest(self.canonical().as_bytes()));
        let signed_info = El::new("ds:SignedInfo", DS)
            .child(El::new("ds:CanonicalizationMethod", DS).attr("Algorithm", EXC_C14N))
            .child(El::new("ds:SignatureMethod", DS).attr("Algorithm", RSA_SHA256))
            .child(
                El::new("ds:Reference", DS)
                    .attr("URI", format!("#{id}"))
                    .child(
                        El::new("ds:Transforms", DS)
                            .child(El::new("ds:Transform", DS).attr("Algorithm", ENVELOPED))
                            .child(El::new("ds:Transform", DS).attr("Algorithm", EXC_C14N)),
                    )
                    .child(El::new("ds:DigestMethod", DS).attr("Algorithm", SHA256))
                    .child(El::new("ds:DigestValue", DS).text(digest)),
            );
        let value = key.sign_rsa_sha256(signed_info.canonical().as_bytes())?;
        let signature = El::new("ds:Signature", DS)
            .child(signed_info)
            .child(El::new("ds:SignatureValue", DS).text(STANDARD.encode(value)))
            .child(
                El::new("ds:KeyInfo", DS).child(El::new("ds:X509Data", DS).child(
                    El::new("ds:X509Certificate", DS).text(key.certificate_base64.as_str()),
                )),
            );
        // After the Issuer in a SAML message or assertion (Core §3.2.1, §2.3.3); first in
        // metadata, which has none (Metadata §2.3.2).
        let after_issuer =
            matches!(self.children.first(), Some(Node::El(e)) if e.name.ends_with(":Issuer"));
        let at = usize::from(after_issuer);
        self.children.insert(at, Node::El(signature));
        Ok(self)
    }
}

fn escape_text(out: &mut String, s: &str) {
    escape(out, s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '\r' => Some("&#xD;"),
        _ => None,
    });
}

fn escape_attr(out: &mut String, s: &str) {
    escape(out, s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '"' => Some("&quot;"),
        '\t' => Some("&#x9;"),
        '\n' => Some("&#xA;"),
        '\r' => Some("&#xD;"),
        _ => None,
    });
}

/// Appends `s` with each character `replacement` names replaced and those XML forbids dropped,
/// copying the runs between them whole (most values, base64 above all, are one run).
fn escape(out: &mut String, s: &str, replacement: impl Fn(char) -> Option<&'static str>) {
    // Most values (IDs, instants, URLs, base64) are printable ASCII with no markup: one copy.
    // The test is a plain loop over bytes that the compiler vectorizes, unlike the char walk.
    let plain = |b: u8| (b' '..=b'~').contains(&b) && !matches!(b, b'&' | b'<' | b'>' | b'"');
    if s.bytes().all(plain) {
        out.push_str(s);
        return;
    }
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let swap = replacement(c);
        if swap.is_some() || super::xml::is_forbidden(c) {
            out.push_str(&s[run..i]);
            out.push_str(swap.unwrap_or(""));
            run = i + c.len_utf8();
        }
    }
    out.push_str(&s[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
    const A: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

    #[test]
    fn escaping_copies_runs_and_drops_what_xml_forbids() {
        let mut out = String::new();
        escape_text(&mut out, "é\u{1}x\r&<>\"\t漢");
        assert_eq!(out, "éx&#xD;&amp;&lt;&gt;\"\t漢");
        out.clear();
        escape_attr(&mut out, "\"a\nb\u{FFFE}\t>&");
        assert_eq!(out, "&quot;a&#xA;b&#x9;>&amp;");
        out.clear();
        escape_attr(&mut out, "");
        assert_eq!(out, "");
        escape_attr(&mut out, "_9f+/= https://a.example/x?y=1;z");
        assert_eq!(
            out, "_9f+/= https://a.example/x?y=1;z",
            "nothing to escape: copied"
        );
        out.clear();
        escape_text(&mut out, "a>b");
        assert_eq!(out, "a&gt;b");
    }

    #[test]
    fn namespaces_appear_where_first_used_and_attributes_sort() {
        let doc = El::new("samlp:Response", P)
            .ns("saml", A)
            .attr("Version", "2.0")
            .attr("ID", "_1")
            .child(El::new("saml:Issuer", A).text("a & <b>"))
            .child(
                El::new("samlp:Status", P)
                    .child(El::new("samlp:StatusCode", P).attr("Value", "x\"y\n")),
            )
            .child(El::new("saml:Assertion", A).attr("ID", "_2"));
        assert_eq!(
            doc.canonical(),
            concat!(
                r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1" Version="2.0">"#,
                r#"<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">a &amp; &lt;b&gt;</saml:Issuer>"#,
                r#"<samlp:Status><samlp:StatusCode Value="x&quot;y&#xA;"></samlp:StatusCode></samlp:Status>"#,
                r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_2"></saml:Assertion>"#,
                "</samlp:Response>"
            )
        );
    }
}
