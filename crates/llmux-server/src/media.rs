//! Media URLs and files on their way to a vendor: which URLs are downloaded (`images.fetch`,
//! the target's needs), the download of each one through the address guard, and the check
//! that every file part is something the target's API can carry. A part that cannot be served
//! is a 400 naming it; nothing is silently replaced (the original router's bug, §A17).

use llmux_config::{Api, FetchImages};
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral::{self, FileKind, Image, ImageSource, Part};
use llmux_router::Target;
use llmux_upstream::images::{Expect, ImageBudget};

use crate::api_error::ApiError;
use crate::state::{Gateway, Snapshot};

/// Whether `url` is one the gateway downloads (`data:` URLs are inline already).
fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// Whether the chat byte path must give way to the neutral path for `request`: a URL the
/// gateway must download for an OpenAI-compatible vendor (a file or audio URL always; an image
/// URL with `images.fetch: all`), or per-part download headers, which must not reach a vendor.
pub fn needs_neutral_path(request: &neutral::Request, fetch: FetchImages) -> bool {
    !request.url_headers.is_empty()
        || request
            .messages
            .iter()
            .flat_map(|m| &m.parts)
            .any(|part| match part {
                Part::Image(Image {
                    source: ImageSource::Url(url),
                    ..
                }) => fetch == FetchImages::All && is_http(url),
                Part::File(file) => matches!(&file.source, ImageSource::Url(_)),
                _ => false,
            })
}

/// Names a part for an error: its position in the conversation as the vendor sees it.
fn part_name(message: usize, part: usize, what: &str) -> String {
    format!("{what} part {part} of message {message}")
}

/// Downloads what `target` needs inline and checks every file part against its API, within
/// the request's budget (`images.max_per_request`, `images.max_total_bytes`).
pub async fn prepare(
    gateway: &Gateway,
    snapshot: &Snapshot,
    target: &Target<'_>,
    request: &mut neutral::Request,
) -> Result<(), ApiError> {
    let settings = &snapshot.config.images;
    let inline_images = match settings.fetch {
        FetchImages::All => true,
        // `off` still marks what needs a download, so the fetcher can refuse it by name.
        FetchImages::Auto | FetchImages::Off => target.credential.fetch_images,
    };
    let api = target.credential.api;
    let wanted = |part: &Part| match part {
        Part::Image(Image {
            source: ImageSource::Url(url),
            ..
        }) => inline_images && is_http(url),
        // With downloads off, Anthropic still reads a document URL itself.
        Part::File(file) => {
            matches!(&file.source, ImageSource::Url(_))
                && !(settings.fetch == FetchImages::Off
                    && api == Api::Anthropic
                    && file.kind == FileKind::Document)
        }
        _ => false,
    };
    // Too many URLs is refused before anything is downloaded.
    let urls = request
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter(|p| wanted(p))
        .count();
    if urls > settings.max_per_request {
        return Err(invalid(format!(
            "at most {} media URLs can be fetched per request (images.max_per_request); this one has {urls}",
            settings.max_per_request
        )));
    }
    let mut budget = ImageBudget::new(settings);
    let url_headers = std::mem::take(&mut request.url_headers);
    for (m, message) in request.messages.iter_mut().enumerate() {
        for (p, part) in message.parts.iter_mut().enumerate() {
            if urls > 0 && wanted(part) {
                download(gateway, part, (m, p), &url_headers, &mut budget).await?;
            }
            check(part, (m, p), api)?;
        }
    }
    Ok(())
}

/// Downloads one URL part and puts its content inline: an image stays an image; a file
/// becomes an image, a PDF or a sound by what the bytes are.
async fn download(
    gateway: &Gateway,
    part: &mut Part,
    (m, p): (usize, usize),
    url_headers: &[neutral::UrlHeaders],
    budget: &mut ImageBudget,
) -> Result<(), ApiError> {
    let (url, expect, what) = match &*part {
        Part::Image(Image {
            source: ImageSource::Url(url),
            ..
        }) => (url.clone(), Expect::Image, "image"),
        Part::File(neutral::File {
            source: ImageSource::Url(url),
            kind,
            ..
        }) => match kind {
            FileKind::Document => (url.clone(), Expect::Document, "file"),
            FileKind::Audio => (url.clone(), Expect::Audio, "audio"),
        },
        _ => return Ok(()),
    };
    let headers = url_headers
        .iter()
        .find(|h| h.url == url)
        .map_or(&[][..], |h| &h.headers[..]);
    let fetched = gateway
        .images
        .load_full()
        .fetch_media(&url, expect, headers, budget)
        .await
        .map_err(|e| invalid(format!("{}: {e}", part_name(m, p, what))))?;
    let source = ImageSource::Base64 {
        data: base64_encode(&fetched.bytes),
        media_type: fetched.media_type,
    };
    if matches!(part, Part::File(_)) && is_image(&source) {
        *part = Part::Image(Image {
            source,
            detail: None,
        });
        return Ok(());
    }
    match part {
        Part::Image(image) => image.source = source,
        Part::File(file) => file.source = source,
        _ => {}
    }
    Ok(())
}

fn is_image(source: &ImageSource) -> bool {
    matches!(source, ImageSource::Base64 { media_type, .. } if media_type.starts_with("image/"))
}

/// Refuses a file part the target's API cannot carry; an inline image sent as a file becomes
/// an image part.
fn check(part: &mut Part, (m, p): (usize, usize), api: Api) -> Result<(), ApiError> {
    let Part::File(file) = part else {
        return Ok(());
    };
    let Some(media_type) = file.media_type().map(str::to_owned) else {
        // Only Anthropic reads a document by URL; the others would need it downloaded, which
        // `images.fetch: off` forbids.
        return match (api, file.kind) {
            (Api::Anthropic, FileKind::Document) => Ok(()),
            _ => Err(invalid(format!(
                "{}: the URL must be downloaded for this vendor, and images.fetch is off",
                part_name(m, p, "file")
            ))),
        };
    };
    if media_type.starts_with("image/") {
        *part = Part::Image(Image {
            source: file.source.clone(),
            detail: None,
        });
        return Ok(());
    }
    match file.kind {
        FileKind::Document if media_type == neutral::PDF => Ok(()),
        FileKind::Document => Err(invalid(format!(
            "{}: documents of type '{media_type}' are not supported; send a PDF or an image",
            part_name(m, p, "file")
        ))),
        FileKind::Audio if api == Api::Anthropic => Err(invalid(format!(
            "{}: Anthropic models take no audio input; choose another vendor with ?vendor=",
            part_name(m, p, "audio")
        ))),
        FileKind::Audio if file.audio_format().is_some() => Ok(()),
        FileKind::Audio => Err(invalid(format!(
            "{}: audio of type '{media_type}' is not supported; send mp3 or wav",
            part_name(m, p, "audio")
        ))),
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message)
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
