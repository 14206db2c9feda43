//! Reading a peer's HTTP reply with a size limit. A webhook receiver or a Telegram API URL is a
//! peer we do not control: a reply is read chunk by chunk and never past [`MAX_REPLY_BYTES`], so
//! an endless body costs at most that much memory (reqwest's `text()`, `bytes()` and `json()`
//! buffer the whole body, with no limit). The time limit of the exchange applies besides.

/// The most of a reply body that is read: Telegram's answers are a few hundred bytes and a
/// receiver's error page a few KiB, so 4 MiB is far above any honest reply.
pub const MAX_REPLY_BYTES: usize = 4 << 20;

/// A reply body read up to a limit.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    /// The bytes read (at most the limit).
    pub body: Vec<u8>,
    /// The peer had more to send than the limit: `body` is only the start.
    pub truncated: bool,
}

impl Reply {
    /// The body as text (invalid UTF-8 replaced).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Read `response`'s body up to `limit` bytes; stop reading (and drop the connection) at the
/// limit. A body announced larger than the limit by `Content-Length` is not read at all.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Reply, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Ok(Reply {
            body: Vec::new(),
            truncated: true,
        });
    }
    let mut reply = Reply::default();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - reply.body.len();
        if chunk.len() > room {
            reply.body.extend_from_slice(&chunk[..room]);
            reply.truncated = true;
            break;
        }
        reply.body.extend_from_slice(&chunk);
    }
    Ok(reply)
}
