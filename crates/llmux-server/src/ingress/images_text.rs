//! `POST /v1/images/text`: the original router's image description (REFERENCE §A3). The body
//! is one `image_url` object; the gateway asks an image-capable model to describe it and
//! answers in the `chat.completion` shape, with `model` = the public name of the combination
//! that answered — its model name unless it has an alias — not the original router's literal
//! `auto-image-model`. `?vendor=` works as on the chat route.

use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral::{self, Image, ImageSource, Message, Part, Role, UrlHeaders};
use llmux_protocol::openai_chat;
use llmux_router::{Endpoint, Needs, Target};
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::pipeline::attempts::Failure;
use crate::pipeline::{self, Answer, Call, Facts, Ingress, Profile, Received, Translate, unix_now};

/// The instruction the original router sends with the image.
const DESCRIBE: &str = "Describe the image as detailed as possible. If the image contains text, reproduce it in your response.";

/// The image description ingress (every vendor through the neutral model).
pub struct ImagesText;

/// A decoded description request: the neutral request built around the image.
pub struct DescribeCall {
    request: neutral::Request,
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "type")]
    kind: Option<String>,
    image_url: Option<ImageUrl>,
}

#[derive(Deserialize)]
struct ImageUrl {
    url: Option<String>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
}

/// Decodes `{"type":"image_url","image_url":{"url","headers"?}}` into a chat request that
/// asks for a description of the image.
fn decode(bytes: &[u8]) -> Result<neutral::Request, ApiError> {
    let body: Body = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::new(ErrorKind::InvalidRequest, "invalid request format"))?;
    let invalid = || {
        let mut error = ApiError::new(ErrorKind::InvalidRequest, "invalid image_url object");
        error.0.param = Some("image_url".into());
        error
    };
    if body.kind.as_deref() != Some("image_url") {
        return Err(invalid());
    }
    let image = body.image_url.ok_or_else(invalid)?;
    let url = image
        .url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(invalid)?;
    let url_headers = image
        .headers
        .filter(|h| !h.is_empty())
        .map(|headers| UrlHeaders {
            url: url.clone(),
            headers: headers.into_iter().collect(),
        })
        .into_iter()
        .collect();
    Ok(neutral::Request {
        system: vec![DESCRIBE.to_owned()],
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::Image(Image {
                source: ImageSource::from_url(&url),
                detail: None,
            })],
        }],
        url_headers,
        ..neutral::Request::default()
    })
}

impl Ingress for ImagesText {
    const PROFILE: Profile =
        Profile::new("images_text", Api::OpenAi, Endpoint::Chat).neutral_only();
    type Request = DescribeCall;

    async fn decode(received: Received<'_>) -> Result<DescribeCall, ApiError> {
        Ok(DescribeCall {
            request: decode(&received.bytes)?,
        })
    }

    fn facts(call: &DescribeCall) -> Facts<'_> {
        let needs = Needs {
            image: true,
            ..Needs::default()
        };
        let reserve = pipeline::reservation(call.request.estimate_input_tokens(), None);
        Facts::new(None, needs, reserve)
    }

    /// Never called: this ingress has no byte path ([`Profile::neutral_only`]).
    async fn passthrough<'a>(
        request: &'a DescribeCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        pipeline::translated::<Self>(request, call, target).await
    }
}

impl Translate for ImagesText {
    type Encoder = openai_chat::ChunkEncoder;

    fn neutral(request: &DescribeCall) -> Result<neutral::Request, ApiError> {
        Ok(request.request.clone())
    }

    // The request names no model: the public name of the combination that answered (its
    // model name unless it has an alias) is what the client sees.
    fn encoder(_request: &DescribeCall, _call: &Call<'_>, public_name: &str) -> Self::Encoder {
        openai_chat::ChunkEncoder::new(unix_now(), public_name, false)
    }

    fn encode_whole(
        _request: &DescribeCall,
        answer: &neutral::Response,
        _call: &Call<'_>,
        public_name: &str,
    ) -> Vec<u8> {
        openai_chat::encode_neutral_response(answer, public_name, unix_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_original_body_with_headers() {
        let request = decode(
            br#"{"type":"image_url","image_url":{"url":"https://x/a.png","headers":{"X-Foo":"bar"}}}"#,
        )
        .unwrap();
        assert_eq!(request.system, vec![DESCRIBE.to_owned()]);
        assert_eq!(
            request.url_headers[0].headers,
            vec![("X-Foo".into(), "bar".into())]
        );
    }

    #[test]
    fn refuses_what_the_original_refuses() {
        let message = |body: &[u8]| decode(body).unwrap_err().0.message.clone();
        assert_eq!(message(b"{"), "invalid request format");
        assert_eq!(
            message(br#"{"type":"text","image_url":{"url":"https://x"}}"#),
            "invalid image_url object"
        );
        assert_eq!(
            message(br#"{"type":"image_url","image_url":{"url":""}}"#),
            "invalid image_url object"
        );
    }
}
