//! The seed's storage lifecycle: `raw/` → Glacier after 30 days, `processed/` → Standard-IA
//! after 90 days, `aggregates/` stays Standard (no rule), unfinished multipart uploads aborted
//! after 7 days.
//!
//! Shipped as `deploy/s3/lifecycle.json` (the `aws s3api put-bucket-lifecycle-configuration`
//! format). `object_store` has no lifecycle API, so [`apply`] sends the S3
//! `PutBucketLifecycleConfiguration` request itself, signed with AWS Signature V4 (a few dozen
//! lines, below). Rule prefixes are placed under the archive's own prefix. The call replaces
//! the bucket's whole lifecycle configuration, as the S3 API does. Endpoints that do not
//! implement it (many S3-compatible servers) answer 501/405/404: [`apply`] then returns
//! [`LifecycleError::Unsupported`] with the equivalent `aws s3api` command.

use crate::store::{Archive, ArchiveUrl, ResolvedS3};
use base64::Engine;
use kd_core::TimestampUs;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The lifecycle document shipped in `deploy/s3/lifecycle.json`.
pub const LIFECYCLE_JSON: &str = include_str!("../../../deploy/s3/lifecycle.json");

/// Why the lifecycle could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("lifecycle rules apply to S3 archives only (this archive is a local folder)")]
    NotS3,
    #[error("lifecycle document: {0}")]
    Document(#[from] serde_json::Error),
    #[error(
        "no S3 credentials (set access_key_id/secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    )]
    NoCredentials,
    #[error("request: {0}")]
    Http(#[from] reqwest::Error),
    #[error(
        "the endpoint does not support PutBucketLifecycleConfiguration (HTTP {status}); apply it with: {command}"
    )]
    Unsupported { status: u16, command: String },
    #[error("the endpoint refused the lifecycle (HTTP {status}): {body}")]
    Refused { status: u16, body: String },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Rule {
    #[serde(rename = "ID")]
    id: String,
    status: String,
    filter: Filter,
    #[serde(default)]
    transitions: Vec<Transition>,
    abort_incomplete_multipart_upload: Option<Abort>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Filter {
    prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Transition {
    days: u32,
    storage_class: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Abort {
    days_after_initiation: u32,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The S3 XML body for the shipped document, rule prefixes placed under `prefix`.
pub fn lifecycle_xml(prefix: &str) -> Result<String, LifecycleError> {
    let doc: Document = serde_json::from_str(LIFECYCLE_JSON)?;
    let base = if prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", prefix.trim_matches('/'))
    };
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
    );
    for rule in &doc.rules {
        xml.push_str("<Rule>");
        xml.push_str(&format!("<ID>{}</ID>", xml_escape(&rule.id)));
        xml.push_str(&format!(
            "<Filter><Prefix>{}{}</Prefix></Filter>",
            xml_escape(&base),
            xml_escape(&rule.filter.prefix)
        ));
        xml.push_str(&format!("<Status>{}</Status>", xml_escape(&rule.status)));
        for t in &rule.transitions {
            xml.push_str(&format!(
                "<Transition><Days>{}</Days><StorageClass>{}</StorageClass></Transition>",
                t.days,
                xml_escape(&t.storage_class)
            ));
        }
        if let Some(a) = &rule.abort_incomplete_multipart_upload {
            xml.push_str(&format!(
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>{}</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
                a.days_after_initiation
            ));
        }
        xml.push_str("</Rule>");
    }
    xml.push_str("</LifecycleConfiguration>");
    Ok(xml)
}

/// The equivalent command for operators (and for endpoints without the API).
pub fn aws_cli_command(bucket: &str) -> String {
    format!(
        "aws s3api put-bucket-lifecycle-configuration --bucket {bucket} --lifecycle-configuration file://deploy/s3/lifecycle.json"
    )
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub bucket: String,
    pub rules_xml: String,
}

/// Applies the lifecycle to the archive's bucket.
pub async fn apply(archive: &Archive) -> Result<Applied, LifecycleError> {
    let (ArchiveUrl::S3 { prefix, .. }, Some(s3)) = (&archive.url, &archive.s3) else {
        return Err(LifecycleError::NotS3);
    };
    let body = lifecycle_xml(prefix)?;
    let (url, host, path) = endpoint(s3);
    let (Some(key_id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) else {
        return Err(LifecycleError::NoCredentials);
    };
    let now = TimestampUs::now().to_rfc3339_secs(); // 2026-11-27T14:05:00Z
    let amz_date: String = now.chars().filter(|c| *c != '-' && *c != ':').collect();
    let date = &amz_date[..8];
    let payload_hash = hex(&Sha256::digest(body.as_bytes()));
    let checksum =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()));
    let mut headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/xml".into()),
        ("host".into(), host.clone()),
        ("x-amz-checksum-sha256".into(), checksum),
        ("x-amz-content-sha256".into(), payload_hash.clone()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    if let Some(token) = &s3.session_token {
        headers.push(("x-amz-security-token".into(), token.expose().to_string()));
    }
    headers.sort();
    let signature = sign_v4(&SigningInput {
        method: "PUT",
        path: &path,
        query: "lifecycle=",
        headers: &headers,
        payload_hash: &payload_hash,
        amz_date: &amz_date,
        date,
        region: &s3.region,
        secret: secret.expose(),
    });
    let signed_headers: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={key_id}/{date}/{}/s3/aws4_request, SignedHeaders={}, Signature={signature}",
        s3.region,
        signed_headers.join(";")
    );
    let client = reqwest::Client::new();
    let mut request = client.put(format!("{url}?lifecycle=")).body(body.clone());
    for (k, v) in &headers {
        if k != "host" {
            request = request.header(k.as_str(), v.as_str());
        }
    }
    let response = request
        .header("authorization", authorization)
        .send()
        .await?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(Applied {
            bucket: s3.bucket.clone(),
            rules_xml: body,
        });
    }
    let text = response.text().await.unwrap_or_default();
    if matches!(status, 404 | 405 | 501) || text.contains("NotImplemented") {
        return Err(LifecycleError::Unsupported {
            status,
            command: aws_cli_command(&s3.bucket),
        });
    }
    Err(LifecycleError::Refused {
        status,
        body: text.chars().take(500).collect(),
    })
}

/// (URL without query, Host header, canonical path) of the bucket: path-style on a custom
/// endpoint, virtual-hosted on AWS.
fn endpoint(s3: &ResolvedS3) -> (String, String, String) {
    match &s3.endpoint {
        Some(e) => {
            let e = e.trim_end_matches('/');
            let host = e.split("://").nth(1).unwrap_or(e).to_string();
            (
                format!("{e}/{}", s3.bucket),
                host,
                format!("/{}", s3.bucket),
            )
        }
        None => {
            let host = format!("{}.s3.{}.amazonaws.com", s3.bucket, s3.region);
            (format!("https://{host}/"), host, "/".to_string())
        }
    }
}

struct SigningInput<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    /// Lowercase names, sorted.
    headers: &'a [(String, String)],
    payload_hash: &'a str,
    amz_date: &'a str,
    date: &'a str,
    region: &'a str,
    secret: &'a str,
}

/// AWS Signature Version 4 for the `s3` service.
fn sign_v4(i: &SigningInput<'_>) -> String {
    let canonical_headers: String = i
        .headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed: Vec<&str> = i.headers.iter().map(|(k, _)| k.as_str()).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        i.method,
        i.path,
        i.query,
        canonical_headers,
        signed.join(";"),
        i.payload_hash
    );
    let scope = format!("{}/{}/s3/aws4_request", i.date, i.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        i.amz_date,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{}", i.secret).as_bytes(), i.date.as_bytes());
    let k_region = hmac(&k_date, i.region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    hex(&hmac(&k_signing, to_sign.as_bytes()))
}

/// HMAC-SHA256 (RFC 2104) over `sha2`, to avoid a dependency for ten lines.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0_u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signature_matches_the_aws_documentation_example() {
        // AWS S3 SigV4 example "GET Object" (docs: sig-v4-header-based-auth).
        let headers = vec![
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("range".to_string(), "bytes=0-9".to_string()),
            (
                "x-amz-content-sha256".to_string(),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string(),
            ),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let sig = sign_v4(&SigningInput {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            payload_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            amz_date: "20130524T000000Z",
            date: "20130524",
            region: "us-east-1",
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        });
        assert_eq!(
            sig,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn the_document_becomes_prefixed_xml() -> Result<(), LifecycleError> {
        let xml = lifecycle_xml("kd/archive")?;
        assert!(xml.contains("<Prefix>kd/archive/raw/</Prefix>"));
        assert!(xml.contains("<Days>30</Days><StorageClass>GLACIER</StorageClass>"));
        assert!(xml.contains("<Prefix>kd/archive/processed/</Prefix>"));
        assert!(xml.contains("<Days>90</Days><StorageClass>STANDARD_IA</StorageClass>"));
        assert!(!xml.contains("aggregates"));
        Ok(())
    }
}
