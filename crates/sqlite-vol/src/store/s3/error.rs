//! What an S3-compatible store's errors mean for the user: the store's XML cut to `Code: Message`, and a
//! fix chosen from what the store or the network said.

use object_store::Error as StoreError;

use crate::Error;

/// Replaces an S3 XML error body with its `Code: Message`, which is all a person needs of it.
fn shorten_xml(detail: &str) -> String {
    let Some(start) = detail.find("<?xml") else {
        return detail.to_string();
    };
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let from = detail[start..].find(&open)? + start + open.len();
        let len = detail[from..].find(&format!("</{t}>"))?;
        Some(detail[from..from + len].to_string())
    };
    let summary = match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => return detail.to_string(),
    };
    format!("{}{summary}", &detail[..start])
}

/// An [`Error::Remote`] whose fix follows from what the store said.
pub(super) fn remote_error(action: &'static str, url: &str, e: &StoreError) -> Error {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            detail = format!("{detail}: {text}");
        }
        source = s.source();
    }
    let detail = shorten_xml(&detail.split_whitespace().collect::<Vec<_>>().join(" "));
    let has = |needles: &[&str]| needles.iter().any(|n| detail.contains(n));
    let fix = if has(&["169.254.169.254", "169.254.170.2"]) {
        "no credentials were found, so the instance-role lookup was tried and failed: set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY (or run where an instance or task role provides them)"
    } else if matches!(e, StoreError::NotFound { .. }) || has(&["NoSuchKey"]) {
        "check the name and prefix: `sqlite-vol list s3://bucket/prefix` shows what is there"
    } else if has(&["NoSuchBucket"]) {
        "create the bucket, or correct its name in the s3:// URL"
    } else if has(&[
        "Connection refused",
        "tcp connect",
        "dns error",
        "timed out",
        "error sending request",
    ]) {
        // Before the credential words: the detail also holds timings and ports ("in 475.524034ms"),
        // so a bare status number would match by accident.
        "check that the endpoint is reachable (AWS_ENDPOINT_URL for a store other than AWS) and the network is up"
    } else if has(&[
        "InvalidAccessKeyId",
        "Missing AccessKeyId",
        "Missing SecretAccessKey",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403 Forbidden",
    ]) {
        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that they may read and write this bucket"
    } else {
        "check the endpoint (AWS_ENDPOINT_URL), the region (AWS_REGION) and the credentials (AWS_ACCESS_KEY_ID)"
    };
    let mut detail = detail.trim_end_matches('.').to_string();
    if detail.len() > 600 {
        let cut = (0..=600)
            .rev()
            .find(|&i| detail.is_char_boundary(i))
            .unwrap_or(0);
        detail.truncate(cut);
        detail.push('…');
    }
    Error::Remote {
        action,
        url: url.into(),
        detail,
        fix: fix.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix_for(message: &str) -> String {
        let e = StoreError::Generic {
            store: "S3",
            source: message.into(),
        };
        match remote_error("uploading backup to", "s3://b/p/x.db", &e) {
            Error::Remote { fix, .. } => fix,
            other => format!("{other}"),
        }
    }

    #[test]
    fn the_fix_follows_what_the_store_said_not_numbers_in_the_message() {
        let refused = "Error performing PUT http://127.0.0.1:38057/b/p/x.db in 475.524034ms, after 4 \
                       retries - HTTP error: error sending request: client error (Connect): tcp connect \
                       error: Connection refused (os error 111)";
        assert!(
            fix_for(refused).contains("reachable"),
            "{}",
            fix_for(refused)
        );
        let denied = "Error performing GET http://127.0.0.1:9000/b in 2ms - Server returned non-2xx \
                      status code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>\
                      <Message>Access Denied</Message></Error>";
        assert!(
            fix_for(denied).contains("AWS_SECRET_ACCESS_KEY"),
            "{}",
            fix_for(denied)
        );
        let no_bucket =
            "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\
                         <Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>";
        assert!(
            fix_for(no_bucket).contains("create the bucket"),
            "{}",
            fix_for(no_bucket)
        );
        let imds =
            "Error performing PUT http://169.254.169.254/latest/api/token in 2ms - 403 Forbidden";
        assert!(
            fix_for(imds).contains("no credentials"),
            "{}",
            fix_for(imds)
        );
    }
}
