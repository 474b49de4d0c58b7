//! The client APIs: each one an [`Ingress`](crate::pipeline::Ingress) the pipeline serves —
//! how its body decodes into routing facts, how one attempt goes to a vendor of its own API
//! (bytes with `model` swapped) or of another (the neutral model), and its error envelope.
//! Adding a client API is one module here and one line in `routes::ROUTES`.

pub(crate) mod chat;
pub(crate) mod embeddings;
pub(crate) mod gemini;
pub(crate) mod images_text;
pub(crate) mod messages;
pub(crate) mod responses;

pub(crate) use chat::Chat;
pub(crate) use embeddings::Embeddings;
pub(crate) use images_text::ImagesText;
pub(crate) use messages::Messages;
pub(crate) use responses::Responses;
